# Source at the start of a GPU-machine command (from the repo root), carrying .gpu-deps and .fi-cache:
#     source benchmarks/gpu_env.sh
# Puts FlashInfer, flashinfer-bench and pydantic on PYTHONPATH (shared/gpu/use-deps.sh), unpacks FlashInfer
# kernels compiled by an earlier call (benchmarks/flashinfer_warmup.py) as AOT modules so that they load
# without JIT, and makes our own package importable.
source .gpu-deps/use-deps.sh
if [ -f .fi-cache/flashinfer_aot.tar.xz ]; then
  mkdir -p /tmp/site/flashinfer/data/aot && tar -xJf .fi-cache/flashinfer_aot.tar.xz -C /tmp/site/flashinfer/data/aot
fi
export PYTHONPATH=$PWD:$PYTHONPATH PYTHONUNBUFFERED=1
