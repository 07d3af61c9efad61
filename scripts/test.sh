#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: install (scripts/setup.sh), run the gates (ruff,
# ruff format, mypy on the core and the auditor, import-linter layering, size rules), check that the
# committed contract artifacts are what the pinned compiler makes, run the contract tests
# under Ape, then every Python test against SQLite and PostgreSQL (when reachable).
#
#   scripts/test.sh [pytest options]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# The production profile's reverse proxy (deploy/nginx.conf) is tested with a real nginx.
if ! command -v nginx >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing nginx-light for the reverse-proxy tests"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light; } \
    || echo "test.sh: nginx-light could not be installed; its tests skip (and fail under CI)" >&2
fi
echo "== lint, format, types and layering"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy ledger/core ledger/audit
.venv/bin/lint-imports
.venv/bin/python scripts/check_layout.py
echo "== contract artifacts reproduce byte for byte"
.venv/bin/python scripts/build_contracts.py --check
echo "== contract tests (Ape, local anvil)"
scripts/ape_test.sh -q
echo "== Python tests"
.venv/bin/python -m pytest -q "$@"
