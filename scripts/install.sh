#!/usr/bin/env bash
# Install kernelarena and everything its tests need, on a fresh CPU-only machine (idempotent).
# PyTorch is pinned to 2.13.0, which resolves to the CPU build on our machines; an unpinned torch would pull
# a multi-GB CUDA build. flashinfer-bench is installed without its dependencies (it imports on a CPU-only
# machine with pydantic, docstring-parser and apache-tvm-ffi) for the interoperability tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python3 -m pip install -q --disable-pip-version-check"
$PIP torch==2.13.0
$PIP -e ".[test,tvm-ffi]"
$PIP --no-deps flashinfer-bench==0.1.2 docstring-parser
