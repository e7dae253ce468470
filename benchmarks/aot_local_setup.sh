#!/usr/bin/env bash
# What benchmarks/flashinfer_aot_local.py needs on a CPU-only machine with nvcc 13 (run once per fresh machine,
# then source it, or pass its exports on): FlashInfer links its modules with -lcudart -lcuda from
# $CUDA_HOME/lib64 and lib64/stubs, and some modules include cuRAND or cuBLAS headers (and the GEMM module links
# cuBLASLt). This machine's toolkit has the runtime but no driver stub and neither library, so:
#  - the cuRAND and cuBLAS wheels of CUDA 13.0, without dependencies, give the headers and libcublas(Lt).so;
#  - an empty shared object named libcuda.so with the soname libcuda.so.1 stands in for the driver at link time
#    (the modules resolve their driver symbols at load, on the GPU machine, from its real libcuda.so.1).
#     source benchmarks/aot_local_setup.sh && python3 -m benchmarks.flashinfer_aot_local
# Sourced: no `set -e` here, which would end the caller's shell on a failed step.
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
python3 -m pip install -q --disable-pip-version-check --no-deps nvidia-curand==10.4.0.35 nvidia-cublas==13.0.0.19
mkdir -p "$CUDA_HOME/lib64/stubs"
[ -e "$CUDA_HOME/lib64/stubs/libcuda.so" ] || \
  echo "" | gcc -shared -x c - -Wl,-soname,libcuda.so.1 -o "$CUDA_HOME/lib64/stubs/libcuda.so"
NV=$(python3 -c "import nvidia; print(nvidia.__path__[0])")  # the wheels' headers and libraries (nvidia/cu13/)
for d in "$NV"/*/include; do export CPATH="$d${CPATH:+:$CPATH}"; done
for d in "$NV"/*/lib; do export LIBRARY_PATH="$d${LIBRARY_PATH:+:$LIBRARY_PATH}"; done
for lib in "$NV"/*/lib/libcublas*.so.*; do  # the linker asks for libcublas.so / libcublasLt.so
  [ -e "${lib%%.so.*}.so" ] || ln -s "$lib" "${lib%%.so.*}.so"
done
echo "CUDA_HOME=$CUDA_HOME CPATH=$CPATH LIBRARY_PATH=$LIBRARY_PATH"
