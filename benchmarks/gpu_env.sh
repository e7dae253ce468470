# Source at the start of a GPU-machine command, from the repo root:
#     source benchmarks/gpu_env.sh
# Carry [".gpu-all", ".fi-cache"] (made by benchmarks/prepare_gpu_deps.sh and benchmarks/flashinfer_warmup.py);
# or [".gpu-slim", ".fi-cache"] (prepare_gpu_deps.sh with SLIM=1: no TileLang, 21 MB, leaves room for a larger tree);
# or [".gpu-tl"] (TL=1: TileLang, pydantic and landlock without FlashInfer, 39 MB);
# add ".tl-cache" (benchmarks/tilelang_precompile.py) for TileLang kernels compiled ahead;
# the older [".gpu-deps", ".fi-cache"] (shared/gpu/prepare-deps.sh: FlashInfer without TileLang) works too.
# Unpacks the packages under /tmp/site, and FlashInfer kernels compiled by an earlier call as AOT modules so
# that they load without JIT; makes our own package importable.
mkdir -p /tmp/site
deps=""
# Every pack carried is unpacked (.gpu-tl, prepare_gpu_deps.sh with TL=1, has TileLang's packages and no FlashInfer:
# for the TileLang part of the reproducibility runs, where FlashInfer beside them would be over the carry limit).
for d in .gpu-slim .gpu-all .gpu-tl; do
  [ -d "$d" ] || continue
  deps=$d
  tar -xJf "$d/site.tar.xz" -C /tmp/site
  if [ -f "$d/flashinfer.tar.xz" ]; then tar -xJf "$d/flashinfer.tar.xz" -C /tmp/site; fi
done
if [ -z "$deps" ] && [ -f .gpu-deps/use-deps.sh ]; then source .gpu-deps/use-deps.sh; fi
# Ray for `kernelarena run --engine ray` (prepare_gpu_deps.sh RAY=1); unpacked once per warm machine.
if [ -f .gpu-ray/ray_site.tar.xz ] && [ ! -d /tmp/site/ray ]; then tar -xJf .gpu-ray/ray_site.tar.xz -C /tmp/site; fi
# .fi-cache*/: FlashInfer modules built earlier (benchmarks/flashinfer_aot_local.py or flashinfer_warmup.py), in
# one pack or several (top-k alone is 10 MB: split off when a call's carry is near the limit).
for pack in .fi-cache*/flashinfer_aot.tar.xz; do
  [ -f "$pack" ] || continue
  mkdir -p /tmp/site/flashinfer/data/aot && tar -xJf "$pack" -C /tmp/site/flashinfer/data/aot
done
# .tl-cache/: TileLang kernels compiled ahead on the CPU machine (benchmarks/tilelang_precompile.py).
if [ -f .tl-cache/tilelang_cache.tar.xz ]; then
  mkdir -p /tmp/tl-cache && tar -xJf .tl-cache/tilelang_cache.tar.xz -C /tmp/tl-cache
  export TILELANG_CACHE_DIR=/tmp/tl-cache
fi
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH=/tmp/site/z3/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# A FlashInfer module missing from the prebuilt cache fails at once, naming itself, instead of compiling for
# minutes inside a capped GPU call (FLASHINFER_DISABLE_JIT=0 before sourcing allows compiling).
export FLASHINFER_DISABLE_JIT=${FLASHINFER_DISABLE_JIT-1}
# An if, not `[ ... ] && unset`: that line's status (1 when JIT stays off) would be the script's, and
# `source benchmarks/gpu_env.sh && python3 ...` would then run nothing.
if [ "$FLASHINFER_DISABLE_JIT" = 0 ]; then unset FLASHINFER_DISABLE_JIT; fi
