#!/usr/bin/env bash
# Install kernelarena and everything its tests need, on a fresh CPU-only machine (idempotent): PyTorch (CPU),
# Triton (its interpreter runs our kernels on the CPU), apache-tvm-ffi and TileLang (builders), flashinfer-bench,
# Ray (the cluster engine of `kernelarena run --engine ray`; its tests start a local Ray instance).
# PyTorch is pinned to 2.13.0, which resolves to the CPU build on our machines; an unpinned torch would pull
# a multi-GB CUDA build. flashinfer-bench is installed without its dependencies (it imports on a CPU-only
# machine with pydantic, docstring-parser and apache-tvm-ffi) for the interoperability tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python3 -m pip install -q --disable-pip-version-check"
$PIP torch==2.13.0
# tilelang pins apache-tvm-ffi<0.1.13 and z3-solver 4.15 (the extra says so); our tvm-ffi builder works with it.
$PIP -e ".[test,tilelang,report,ray]"
# FlashInfer installs and imports on a CPU-only machine (its kernels do not run there): the integration tests
# patch the real package and route its calls to our CPU solutions.
$PIP flashinfer-python==0.7.2.post1
$PIP --no-deps flashinfer-bench==0.1.2 docstring-parser
# Headless Chromium opens the HTML report in tests/report/test_browser.py: Debian's package, only when missing.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
fi
