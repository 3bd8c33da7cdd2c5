#!/usr/bin/env bash
# Install rsc with its dev tools, start a throwaway PostgreSQL on 127.0.0.1, lint, run the tests.
# This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -c constraints.txt -e ".[dev]"
if [ -f scripts/pg-test-server.sh ]; then
  eval "$(bash scripts/pg-test-server.sh start)"
  trap 'bash scripts/pg-test-server.sh stop >/dev/null 2>&1 || true' EXIT
fi
ruff check src tests bench
python -m pytest "$@"
