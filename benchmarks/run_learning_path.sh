#!/usr/bin/env bash
# Runs every example of the learning path and grades both exercises (reference answers and skeletons) on the
# GPU; each output goes to $OUT/learning_path/<name>.txt, and a summary line per step to summary.txt.
#   source benchmarks/gpu_env.sh && bash benchmarks/run_learning_path.sh [examples|exercises|STEP ...]
# (no argument: both; examples or exercises: only that half; step names or prefixes, e.g. `05 exercise_02`:
# only the steps whose names start with one of them, for a run split over calls.)
set -uo pipefail
cd "$(dirname "$0")/.."
dir="${OUT:-/tmp}/learning_path"
mkdir -p "$dir"
what="${1:-all}"
steps="$*"
touch "$dir/summary.txt"
picked() {  # whether step $1 is among the named steps (every step when none is named)
  [ "$what" = all ] || [ "$what" = examples ] || [ "$what" = exercises ] && return 0
  for p in $steps; do case "$1" in "$p"*) return 0 ;; esac; done
  return 1
}
step() {  # name, expected exit code, command...
  local name=$1 expected=$2; shift 2
  picked "$name" || return 0
  local start=$SECONDS
  "$@" > "$dir/$name.txt" 2>&1
  local rc=$?
  local verdict=$([ "$rc" = "$expected" ] && echo ok || echo UNEXPECTED)
  echo "$name: exit $rc (expected $expected) $verdict, $((SECONDS - start)) s" | tee -a "$dir/summary.txt"
}
nvidia-smi --query-gpu=name --format=csv,noheader > "$dir/gpu.txt" 2>&1
if [ "$what" != exercises ]; then
step 01_attention_basics 0 python3 examples/01_attention_basics/attention_basics.py
step 02_trace_schema 0 python3 examples/02_trace_schema/trace_schema.py
step 03_apply 0 python3 examples/03_apply/apply_basics.py
step 04_custom_kernels 0 python3 examples/04_custom_kernels/custom_kernels.py
step 05_integration 0 python3 examples/05_integration/integration.py
fi
[ "$what" = examples ] && exit 0
for ex in 01_triton_rmsnorm 02_interchangeable_attention; do
  step "exercise_${ex}_reference" 0 python3 -m kernelarena.cli exercise check "exercises/$ex" --reference
  step "exercise_${ex}_skeleton" 1 python3 -m kernelarena.cli exercise check "exercises/$ex"
done
