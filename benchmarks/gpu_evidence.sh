#!/usr/bin/env bash
# One GPU-machine call that gathers the evidence of a session in priority order, each step under its own time
# cap so that a slow step cannot starve the ones after it, and each step's output in $OUT/<step>.log as it is
# printed (a capped step keeps what it printed). Carry [".gpu-all", ".fi-cache"]; run from the repo root:
#     bash benchmarks/gpu_evidence.sh [STEP ...]      (default: every step below, in order)
# Steps: smoke, tltests, diag, teardown, cuptiratio, recupti, recuptimoe, serving, tests, host, hostsweep, repro, repro1, repro2 (or repro2a, repro2b), repro3, stability, learning, walltime, ray, prefill,
# attention, prefillsweep, rmsnormsweep, rmsnormvariants, rmsnormgrid, decodesweep, ties. Caps in seconds are set
# per step below; pick steps so that their caps sum to under 9 minutes per call (one call is at most 10).
set -u
source benchmarks/gpu_env.sh
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
export KERNELARENA_CACHE_DIR=/tmp/kernelarena-cache
step() {  # step NAME CAP COMMAND...
  local name=$1 cap=$2; shift 2
  local t0=$SECONDS
  echo "== $name (cap ${cap}s): $*" | tee -a "$OUT/steps.log"
  # SIGINT first: pytest then prints its summary (which tests failed, and why) before it stops, and a script
  # ends by KeyboardInterrupt with what it printed; killed 15 s later if it has not.
  timeout --signal=INT --kill-after=15 "$cap" "$@" > "$OUT/$name.log" 2>&1
  echo "== $name: rc=$? after $((SECONDS - t0)) s" | tee -a "$OUT/steps.log"
}
steps=${*:-serving tests host repro}
for s in $steps; do
  case $s in
    # What the machine has, and whether FlashInfer's prebuilt modules load without compiling (a JIT compile of a
    # module takes minutes there and would eat the call).
    smoke) step smoke 60 python3 -m benchmarks.gpu_smoke ;;
    # Host costs of an isolated evaluation piece by piece (profile stop/read, payload save/load, comparison, alone and
    # with another process keeping the GPU busy).
    diag) step diag_handover_cost 90 python3 -m benchmarks.diag_handover_cost --out "$OUT" ;;
    # Profile start and stop repeated in one process, with and without CUPTI teardown (#14's profile reads).
    teardown) step diag_cupti_teardown "${TEARDOWN_CAP:-60}" python3 -m benchmarks.diag_cupti_teardown --out "$OUT" ;;
    # Issue #23's latency / CUPTI outliers taken four ways: the harness's timer with and without its sleep ahead,
    # the reproducibility script's profile with and without that sleep (needs the packs of the named solutions).
    cuptiratio) step diag_cupti_ratio "${CUPTIRATIO_CAP:-120}" python3 -m benchmarks.diag_cupti_ratio --out "$OUT" ;;
    # The CUPTI figures of the pairs outside 5% taken again with the timed loop's launch pattern (the sleep ahead),
    # from the committed part files (no FlashInfer needed).
    recupti) step recupti "${RECUPTI_CAP:-90}" bash -c 'set -e
        moe=moe_bf16_ds_routing_topk8_ng8_kg4_e32_h7168_i2048
        python3 -m benchmarks.reproducibility --recupti benchmarks/results/reproducibility_nvidia_h200_part2a.json \
            --solutions ${moe}_pytorch ${moe}_kernelarena_triton --tag _part2a_recupti --out "$0"
        python3 -m benchmarks.reproducibility --recupti benchmarks/results/reproducibility_nvidia_h200_part1.json \
            --solutions rmsnorm_h8192_pytorch --tag _part1_recupti --out "$0"
        python3 -m benchmarks.reproducibility --recupti benchmarks/results/reproducibility_nvidia_h200_part2b.json \
            --solutions rope_with_cos_sin_cache_neox_style_d128_rd128_kernelarena_triton --tag _part2b_recupti \
            --out "$0"' "$OUT" ;;
    # The MoE rows at hidden size 7168 again, profiled on the run's one input set (TimingConfig.copies_for).
    recuptimoe) step recupti "${RECUPTI_CAP:-150}" bash -c 'set -e
        moe=moe_bf16_ds_routing_topk8_ng8_kg4_e32_h7168_i2048
        python3 -m benchmarks.reproducibility --recupti benchmarks/results/reproducibility_nvidia_h200_part2a_recupti.json \
            --solutions ${moe}_pytorch ${moe}_kernelarena_triton --tag _part2a_recupti --out "$0"' "$OUT" ;;
    tests) step gpu_tests "${TESTS_CAP:-240}" python3 -m pytest -v -m gpu -p no:cacheprovider --durations=15 \
             ${GPU_TESTS:-tests} ;;
    learning) OUT=$OUT step learning_path "${LEARNING_CAP:-300}" bash benchmarks/run_learning_path.sh ${LEARNING_STEPS:-} ;;
    failed) step gpu_tests_failed 90 python3 -m pytest -q -m gpu -p no:cacheprovider --tb=short -rf ${FAILED_TESTS:-} ;;
    decodestep) step decode_step "${DECODE_CAP:-150}" python3 -m kernelarena.cli run examples/dataset --no-save \
                  --smallest 2 --definition gemm_n6144_k4096 --definition gemm_n4096_k4096 \
                  --definition gemm_n28672_k4096 --definition gemm_n4096_k14336 --definition silu_and_mul_d14336 \
                  --definition rope_with_cos_sin_cache_neox_style_d128_rd128 \
                  --definition mla_paged_decode_h16_ckv512_kpe64_ps1 \
                  --definition moe_bf16_ds_routing_topk8_ng8_kg4_e32_h7168_i2048 \
                  --definition moe_bf16_ds_routing_topk8_ng8_kg4_e32_h256_i128 \
                  --definition top_k_sampling_from_probs_v128256 --definition top_p_sampling_from_probs_v128256 \
                  --definition top_k_top_p_sampling_from_probs_v128256 ;;
    # WALL_ARGS adds isolated runs with other `kernelarena run` options, one token each, e.g.
    # WALL_ARGS="--variant-args=--lanes=3 --variant-args=--timing=events" (three lanes; CUDA events, the baseline's
    # timer), each about as long as the isolated run; WALL_ARGS="--rounds=2" runs the baseline and the isolated run
    # twice, interleaved, and takes the medians (the baseline alone moved 55.9-65.4 s between calls on the H200);
    # "--lock-timeline" adds where the isolated runs' device lock spent the time (held alone, shared, free).
    walltime) step isolation_walltime "${WALL_CAP:-200}" python3 -m benchmarks.isolation_walltime --baseline .before \
                ${WALL_ARGS:-} \
                --definition rmsnorm_h4096 --definition rmsnorm_h8192 --definition fused_add_rmsnorm_h4096 \
                --definition fused_add_rmsnorm_h8192 --definition gqa_paged_decode_h32_kv8_d128_ps16 \
                --definition gqa_paged_prefill_causal_h32_kv8_d128_ps16 --out "$OUT" ;;
    ray) step ray_walltime "${RAY_CAP:-200}" python3 -m benchmarks.ray_walltime --smallest "${RAY_SMALLEST:-2}" --out "$OUT" ;;
    prefill) step sweep_prefill_hopper "${SWEEP_CAP:-100}" python3 -m benchmarks.sweep_prefill_hopper ${SWEEP_ARGS:-} \
               --out "$OUT" ;;
    # The TileLang prefill kernels' GPU tests (kernels compiled ahead: carry .tl-cache, benchmarks/tilelang_precompile.py);
    # a kernel that hangs ends the run at the per-test timeout (pytest-timeout), naming the test.
    tltests) step tilelang_tests "${TLTESTS_CAP:-200}" python3 -m pytest -v -rs -m gpu -p no:cacheprovider --durations=5 \
               --timeout "${TLTEST_TIMEOUT:-120}" --timeout-method thread \
               tests/kernels/test_attention_prefill_tilelang.py ;;
    # Long calls timed after idle and after heat, default and stretched warm-up (about 60 s).
    stability) step timing_stability "${STABILITY_CAP:-80}" python3 -m benchmarks.timing_stability --rounds 2 ${STABILITY_ARGS:-} --out "$OUT" ;;
    attention) step attention 150 python3 -m benchmarks.bench_attention --out "$OUT" ;;
    # Issue #18's prefill grid (1-16 requests x 512-8192 queries, KV to 16384), a row without a mask, a ragged row.
    prefillsweep) step attention_prefill "${PREFILL_CAP:-240}" python3 -m benchmarks.bench_attention --prefill-sweep \
                    --out "$OUT" ;;
    serving) step serving "${SERVING_CAP:-300}" python3 -m benchmarks.bench_serving ${SERVING_ARGS:-} --out "$OUT" ;;
    # Issue #18's RMSNorm grid on this GPU: every batch x hidden, ours (auto, Triton, CUDA) beside FlashInfer, PyTorch
    # and a copy of the same bytes, with the Triton configs and CUDA threads per row of --sweep.
    rmsnormsweep) step rmsnorm_sweep "${RMSNORM_CAP:-280}" python3 -m benchmarks.bench_rmsnorm --sweep \
                    --backends auto,triton,cuda,flashinfer,torch --out "$OUT" ;;
    # Decode kernel configs at batch >= 64 (issue #18), side by side with FlashInfer.
    decodesweep) step sweep_decode "${DECODE_SWEEP_CAP:-120}" python3 -m benchmarks.sweep_attention --only decode \
                   ${DECODE_SWEEP_VARIANTS:+--variants "$DECODE_SWEEP_VARIANTS"} \
                   --cases "${DECODE_SWEEP_CASES:-64x1024,64x4096,128x4096,256x8192}" --out "$OUT" ;;
    # Our CUDA RMSNorm kernel's compile-time knobs and threads, our Triton kernel's loads, beside FlashInfer, back to
    # back and with a cold L2 (issue #18; about 2 minutes for the fused op's eight shapes).
    rmsnormvariants) step diag_rmsnorm_variants "${RMSVARIANTS_CAP:-240}" python3 -m benchmarks.diag_rmsnorm_variants \
                       ${RMSVARIANTS_ARGS:-} --out "$OUT" ;;
    # Issue #18's closest points repeated on fresh inputs (fused_add_rmsnorm back to back from 8192 rows, decode at
    # batch >= 64), each repetition's ratio to FlashInfer beside the floor (TIES_ARGS, e.g. "--repeats 5").
    ties) step diag_ties "${TIES_CAP:-300}" python3 -m benchmarks.diag_ties ${TIES_ARGS:-} --out "$OUT" ;;
    # The RMSNorm grid without the config sweep (about a minute).
    rmsnormgrid) step rmsnorm_grid "${RMSNORM_CAP:-120}" python3 -m benchmarks.bench_rmsnorm \
                   --backends auto,triton,cuda,flashinfer,torch --out "$OUT" ;;
    host) step rmsnorm_host 70 python3 -m benchmarks.bench_rmsnorm --quick --out "$OUT" ;;
    # Calls back to back only (seconds): ours (auto, cuda, triton) and FlashInfer, and our CUDA kernel at each
    # threads-per-row, so the default can be read off.
    hostsweep) step rmsnorm_host_sweep 90 python3 -m benchmarks.bench_rmsnorm --host-only --sweep \
                 --backends auto,cuda,triton,flashinfer --out "$OUT" ;;
    # REPRO_ARGS replaces the default selection, e.g. "--smallest 1 --tag _smallest1" (every definition, its
    # smallest workload: about 200 s on the H200).
    repro) step reproducibility "${REPRO_CAP:-200}" python3 -m benchmarks.reproducibility ${REPRO_ARGS:---definitions rmsnorm_h8192 gqa_paged_decode_h32_kv8_d128_ps16 --solutions rmsnorm_h8192_kernelarena_triton rmsnorm_h8192_flashinfer rmsnorm_h8192_pytorch flashinfer_wrapper_gqa_paged_decode_h32_kv8_d128_ps16 kernelarena_triton_gqa_paged_decode_h32_kv8_d128_ps16 torch_reference_gqa_paged_decode_h32_kv8_d128_ps16 gqa_paged_decode_h32_kv8_d128_ps16_pytorch} --out "$OUT" ;;
    # Every workload of every definition, twice, in parts (H200, 2026-12-03, session 14, long calls resting: part 1
    # runs 83 + 81 s, part 2b 98 + 91 s, builds cached by an earlier step of the same machine; a fresh machine
    # builds part 1 in about 80 s); then on this machine:
    #   python3 -m benchmarks.reproducibility --merge <part1.json> <part2a.json> ... --out benchmarks/results
    repro1) step reproducibility "${REPRO_CAP:-450}" python3 -m benchmarks.reproducibility --budget-s $(( ${REPRO_CAP:-450} - 30 )) --tag _part1 \
              --definitions rmsnorm_h4096 rmsnorm_h8192 fused_add_rmsnorm_h4096 fused_add_rmsnorm_h8192 \
              gqa_paged_decode_h32_kv8_d128_ps16 gqa_paged_prefill_causal_h32_kv8_d128_ps16 --out "$OUT" ;;
    # Part 2 in one call (session 13: builds 3 s, runs 271 + 259 s, and its CUPTI step had time for 10 of 142
    # traces under REPRO_CAP=565), or in two (repro2a, repro2b: carry the GEMM, MLA, top-k and 'more' packs).
    repro2) step reproducibility "${REPRO_CAP:-450}" python3 -m benchmarks.reproducibility --budget-s $(( ${REPRO_CAP:-450} - 30 )) --tag _part2 \
              --definitions gemm_n28672_k4096 gemm_n4096_k14336 gemm_n4096_k4096 gemm_n6144_k4096 \
              mla_paged_decode_h16_ckv512_kpe64_ps1 moe_bf16_ds_routing_topk8_ng8_kg4_e32_h256_i128 \
              moe_bf16_ds_routing_topk8_ng8_kg4_e32_h7168_i2048 rope_with_cos_sin_cache_neox_style_d128_rd128 \
              silu_and_mul_d14336 top_k_sampling_from_probs_v128256 top_k_top_p_sampling_from_probs_v128256 \
              top_p_sampling_from_probs_v128256 --out "$OUT" ;;
    repro2a) step reproducibility "${REPRO_CAP:-450}" python3 -m benchmarks.reproducibility --budget-s $(( ${REPRO_CAP:-450} - 30 )) --tag _part2a \
              --definitions gemm_n28672_k4096 gemm_n4096_k14336 gemm_n4096_k4096 gemm_n6144_k4096 \
              mla_paged_decode_h16_ckv512_kpe64_ps1 moe_bf16_ds_routing_topk8_ng8_kg4_e32_h256_i128 \
              moe_bf16_ds_routing_topk8_ng8_kg4_e32_h7168_i2048 --out "$OUT" ;;
    repro2b) step reproducibility "${REPRO_CAP:-450}" python3 -m benchmarks.reproducibility --budget-s $(( ${REPRO_CAP:-450} - 30 )) --tag _part2b \
              --definitions rope_with_cos_sin_cache_neox_style_d128_rd128 silu_and_mul_d14336 \
              top_k_sampling_from_probs_v128256 top_k_top_p_sampling_from_probs_v128256 \
              top_p_sampling_from_probs_v128256 --out "$OUT" ;;
    # The TileLang solutions of the RMSNorm definitions (no other part can carry TileLang beside FlashInfer under
    # the 64 MiB limit): carry [".gpu-tl"] alone (TileLang's site packages without FlashInfer).
    repro3) step reproducibility "${REPRO_CAP:-300}" python3 -m benchmarks.reproducibility --budget-s $(( ${REPRO_CAP:-300} - 30 )) --tag _part3 \
              --definitions rmsnorm_h4096 rmsnorm_h8192 fused_add_rmsnorm_h4096 fused_add_rmsnorm_h8192 \
              --solutions rmsnorm_h4096_kernelarena_tilelang rmsnorm_h8192_kernelarena_tilelang \
              fused_add_rmsnorm_h4096_kernelarena_tilelang fused_add_rmsnorm_h8192_kernelarena_tilelang --out "$OUT" ;;
    *) echo "unknown step $s" ;;
  esac
done
# The device tool returns at most 8 files: pack everything into one archive, keeping the step log beside it.
( cd "$OUT" && tar -czf /tmp/evidence.tgz --exclude=evidence.tgz . && find . -mindepth 1 ! -name steps.log -delete \
  && mv /tmp/evidence.tgz . )
ls -la "$OUT"
