#!/usr/bin/env bash
# Runs every example of the learning path and grades both exercises (reference answers and skeletons) on the
# GPU; each output goes to $OUT/learning_path/<name>.txt, and a summary line per step to summary.txt.
#   source benchmarks/gpu_env.sh && bash benchmarks/run_learning_path.sh [examples|exercises]
# (no argument: both; an argument: only that half, for a shorter run.)
set -uo pipefail
cd "$(dirname "$0")/.."
dir="${OUT:-/tmp}/learning_path"
mkdir -p "$dir"
what="${1:-all}"
touch "$dir/summary.txt"
step() {  # name, expected exit code, command...
  local name=$1 expected=$2; shift 2
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
