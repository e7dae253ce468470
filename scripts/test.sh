#!/usr/bin/env bash
# The test command: install (idempotent), then run the whole CPU test suite. GPU tests skip themselves here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
python3 -m pytest -q "$@"
