#!/usr/bin/env bash
# Install everything Tally Ledger needs into this checkout: a Python 3.11 virtual
# environment in .venv (locked versions) and the pinned Node tools in node_modules.
# Safe to run again: it only reinstalls what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${TALLY_PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$candidate; break
    fi
  done
fi
[ -n "$python" ] || { echo "setup: Python 3.11 is required (set TALLY_PYTHON to its path)" >&2; exit 1; }
command -v node >/dev/null || { echo "setup: Node.js 20 or newer is required" >&2; exit 1; }

[ -x .venv/bin/python ] || "$python" -m venv .venv

stamp=.venv/.tally-installed
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv (locked in requirements.lock)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24,<27" "setuptools==75.8.0" "wheel==0.45.1"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi

nstamp=node_modules/.tally-installed
nwant=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$nstamp" 2>/dev/null)" != "$nwant" ]; then
  echo "setup: installing Node tools (locked in package-lock.json)"
  # Not 'npm ci': npm 11 leaves other platforms' optional packages (anvil for macOS, a
  # GitHub-only optional dependency of js-ipfs) out of the lock file and then refuses it.
  # 'npm install' follows the same lock and skips optional packages it cannot fetch.
  npm install --no-audit --no-fund --loglevel=error
  echo "$nwant" > "$nstamp"
fi
echo "setup: ready. Try: .venv/bin/tally demo"
