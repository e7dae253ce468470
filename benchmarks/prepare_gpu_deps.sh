#!/usr/bin/env bash
# Build .gpu-all/ (git-ignored): every Python package our GPU runs need that the GPU machine lacks, packed to
# travel in one call (about 58 MB: z3's headers and its duplicate library are left out; under the 64 MiB limit with .fi-cache):
#   flashinfer.tar.xz     FlashInfer 0.7.2.post1's package, repacked (its wheel is 62 MB)
#   site.tar.xz           tilelang 0.1.15 with what it needs there (z3-solver 4.15: tilelang links libz3.so.4.15;
#                         apache-tvm-ffi 0.1.12: tilelang requires <0.1.13), torch-c-dlpack-ext, pydantic, and
#                         flashinfer-bench 0.1.2 (pure Python; the interop GPU test runs its benchmark), and
#                         landlock (the binding the solution sandbox uses)
# SLIM=1 makes .gpu-slim/ instead, without TileLang and z3 (21 MB); TL=1 makes .gpu-tl/, site.tar.xz alone (TileLang
# without FlashInfer, 39 MB).
# RAY=1 also makes .gpu-ray/ray_site.tar.xz (26 MB): Ray 2.60.0 and the jsonschema packages it needs that the GPU
# image lacks, without Ray's Java jars and its libraries we do not use (rllib, data, serve, train, tune, llm);
# its wheel (79 MB) is over the carry limit, so it travels alone or with .gpu-slim only.
# Then on the GPU machine: carry [".gpu-all", ".fi-cache"] (or [".gpu-slim", ".fi-cache"]) and `source benchmarks/gpu_env.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dest=.gpu-all
mkdir -p "$dest"
grep -qxF "/$dest/" .git/info/exclude 2>/dev/null || echo "/$dest/" >> .git/info/exclude
tmp=$(mktemp -d)
plat="--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
python3 -m pip download -q --no-deps $plat -d "$tmp/wheels" flashinfer-python==0.7.2.post1 tilelang==0.1.15 \
  z3-solver==4.15.4.0 apache-tvm-ffi==0.1.12 torch-c-dlpack-ext pydantic==2.14.4 pydantic-core==2.50.5 \
  annotated-types typing-inspection flashinfer-bench==0.1.2 docstring-parser landlock==1.0.0.dev5
mkdir -p "$tmp/fi" "$tmp/site"
( cd "$tmp/fi" && unzip -q ../wheels/flashinfer_python-*.whl && tar -cf - flashinfer | xz -T2 -6 > "$tmp/flashinfer.tar.xz" )
( cd "$tmp/site" && for w in ../wheels/*.whl; do case "$w" in *flashinfer_python*) ;; *) unzip -q -o "$w";; esac; done \
  && rm -rf z3_solver-*.data && ln -sf libz3.so.4.15 z3/lib/libz3.so \
  && tar -cf - . | xz -T2 -6 > "$tmp/site.tar.xz" )
if [ "${SLIM:-0}" = 1 ]; then  # without TileLang and z3 (21 MB instead of 58): for calls that do not build TileLang
  dest=.gpu-slim
  mkdir -p "$dest" "$tmp/slim"
  grep -qxF "/$dest/" .git/info/exclude 2>/dev/null || echo "/$dest/" >> .git/info/exclude
  ( cd "$tmp/slim" && tar -xJf "$tmp/site.tar.xz" && rm -rf tilelang tilelang-*.dist-info z3 z3_solver* \
    && tar -cf - . | xz -T2 -6 > "$tmp/site.tar.xz" )
fi
if [ "${TL:-0}" = 1 ]; then  # TileLang's site packages alone, without FlashInfer (39 MB): the TileLang part
  dest=.gpu-tl                 # of the reproducibility runs (gpu_evidence.sh repro3)
  mkdir -p "$dest"
  grep -qxF "/$dest/" .git/info/exclude 2>/dev/null || echo "/$dest/" >> .git/info/exclude
  rm -f "$tmp/flashinfer.tar.xz" "$dest/flashinfer.tar.xz"
  mv "$tmp/site.tar.xz" "$dest/"
else
  mv "$tmp/flashinfer.tar.xz" "$tmp/site.tar.xz" "$dest/"
fi
if [ "${RAY:-0}" = 1 ]; then
  mkdir -p .gpu-ray "$tmp/ray"
  grep -qxF "/.gpu-ray/" .git/info/exclude 2>/dev/null || echo "/.gpu-ray/" >> .git/info/exclude
  python3 -m pip download -q --no-deps $plat -d "$tmp/raywheels" ray==2.60.0 jsonschema jsonschema-specifications \
    referencing rpds-py
  ( cd "$tmp/ray" && for w in ../raywheels/*.whl; do unzip -q -o "$w"; done \
    && rm -rf ray/jars ray/rllib ray/data ray/serve ray/train ray/tune ray/llm \
    && tar -cf - . | xz -T2 -9 > "$root/.gpu-ray/ray_site.tar.xz" )
fi
rm -rf "$tmp"
du -sh "$dest"/*
