#!/usr/bin/env bash
# The second command: set everything up (training and test tools included), lint, check the layers, run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/lint-imports  # the layer contracts in pyproject.toml ([tool.importlinter])
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
