#!/usr/bin/env bash
# One GPU-machine call that gathers the evidence of a session in priority order, each step under its own time
# cap so that a slow step cannot starve the ones after it, and each step's output in $OUT/<step>.log as it is
# printed (a capped step keeps what it printed). Carry [".gpu-all", ".fi-cache"]; run from the repo root:
#     bash benchmarks/gpu_evidence.sh [STEP ...]      (default: every step below, in order)
# Steps: smoke, serving, tests, host, repro, learning, walltime, ray, prefill, attention. Caps in seconds are set
# per step below; pick steps so that their caps sum to under 9 minutes per call (one call is at most 10).
set -u
source benchmarks/gpu_env.sh
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
export KERNELARENA_CACHE_DIR=/tmp/kernelarena-cache
step() {  # step NAME CAP COMMAND...
  local name=$1 cap=$2; shift 2
  local t0=$SECONDS
  echo "== $name (cap ${cap}s): $*" | tee -a "$OUT/steps.log"
  timeout --kill-after=5 "$cap" "$@" > "$OUT/$name.log" 2>&1
  echo "== $name: rc=$? after $((SECONDS - t0)) s" | tee -a "$OUT/steps.log"
}
steps=${*:-serving tests host repro}
for s in $steps; do
  case $s in
    # What the machine has, and whether FlashInfer's prebuilt modules load without compiling (a JIT compile of a
    # module takes minutes there and would eat the call).
    smoke) step smoke 60 python3 -m benchmarks.gpu_smoke ;;
    tests) step gpu_tests "${TESTS_CAP:-240}" python3 -m pytest -v -m gpu -p no:cacheprovider --durations=15 \
             ${GPU_TESTS:-tests} ;;
    learning) OUT=$OUT step learning_path 150 bash benchmarks/run_learning_path.sh ;;
    walltime) step isolation_walltime 200 python3 -m benchmarks.isolation_walltime --baseline .before \
                --definition rmsnorm_h4096 --definition rmsnorm_h8192 --definition fused_add_rmsnorm_h4096 \
                --definition fused_add_rmsnorm_h8192 --definition gqa_paged_decode_h32_kv8_d128_ps16 \
                --definition gqa_paged_prefill_causal_h32_kv8_d128_ps16 --out "$OUT" ;;
    ray) step ray_walltime 200 python3 -m benchmarks.ray_walltime --smallest 2 --out "$OUT" ;;
    prefill) step sweep_prefill_hopper 100 python3 -m benchmarks.sweep_prefill_hopper --out "$OUT" ;;
    attention) step attention 150 python3 -m benchmarks.bench_attention --out "$OUT" ;;
    serving) step serving 300 python3 -m benchmarks.bench_serving --norm triton --out "$OUT" ;;
    host) step rmsnorm_host 70 python3 -m benchmarks.bench_rmsnorm --quick --out "$OUT" ;;
    repro) step reproducibility 130 python3 -m benchmarks.reproducibility --definitions rmsnorm_h8192 gqa_paged_decode_h32_kv8_d128_ps16 --solutions rmsnorm_h8192_kernelarena_triton rmsnorm_h8192_flashinfer rmsnorm_h8192_pytorch flashinfer_wrapper_gqa_paged_decode_h32_kv8_d128_ps16 kernelarena_triton_gqa_paged_decode_h32_kv8_d128_ps16 torch_reference_gqa_paged_decode_h32_kv8_d128_ps16 gqa_paged_decode_h32_kv8_d128_ps16_pytorch --out "$OUT" ;;
    *) echo "unknown step $s" ;;
  esac
done
# The device tool returns at most 8 files: pack everything into one archive, keeping the step log beside it.
( cd "$OUT" && tar -czf /tmp/evidence.tgz --exclude=evidence.tgz . && find . -mindepth 1 ! -name steps.log -delete \
  && mv /tmp/evidence.tgz . )
ls -la "$OUT"
