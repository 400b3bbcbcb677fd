#!/usr/bin/env bash
# Set up (first run only) and start the workshop window on the simulated vehicle.
# Any arguments go to `workshop` instead, e.g. `scripts/run.sh monitor`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
if [ $# -eq 0 ]; then set -- gui; fi
exec .venv/bin/workshop "$@"
