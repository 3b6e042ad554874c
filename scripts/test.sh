#!/usr/bin/env bash
# Run the whole test suite (and the linter) in the project's virtual environment.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k metrics`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ruff check src tests benchmarks
ruff format --check src tests benchmarks
exec python -m pytest "$@"
