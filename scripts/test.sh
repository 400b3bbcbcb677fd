#!/usr/bin/env bash
# Set up (first run only) and run every check: ruff, mypy --strict on the core, the Qt-free core contract, the test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh test
export QT_QPA_PLATFORM=offscreen
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict (core)"
.venv/bin/mypy --strict workshop_app/core
echo "== pytest"
exec .venv/bin/pytest "$@"
