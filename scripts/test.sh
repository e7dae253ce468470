#!/usr/bin/env bash
# The test command: install (idempotent), lint (ruff, configured in pyproject.toml), then run the whole CPU test
# suite. GPU tests skip themselves here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
python3 -m ruff check kernelarena tests benchmarks examples
python3 -m pytest -q "$@"
