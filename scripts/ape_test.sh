#!/usr/bin/env bash
# Runs the contract tests (tests/contracts) under Ape on a throwaway anvil from node_modules.
#
#   scripts/ape_test.sh [pytest options]      e.g. scripts/ape_test.sh -q -k verify
#
# Needs `npm ci` (solc-js, OpenZeppelin, anvil) and the dev extras in .venv (eth-ape,
# ape-solidity). Works offline: solc is the solc-js shim (SOLCX_BINARY_PATH=scripts/solcx),
# Ape's state goes to .build/ape-data, and the chain is a fresh anvil on a free port,
# reached through Ape's built-in `node` provider (ape-config.yaml); no ape-foundry needed.
# Every test deploys its own contract, so Ape's snapshot isolation (which anvil cannot do
# through the `node` provider) is turned off.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
python="${PYTHON:-$repo/.venv/bin/python}"
ape="$(dirname "$python")/ape"

export SOLCX_BINARY_PATH="$repo/scripts/solcx"
export APE_DATA_FOLDER="${APE_DATA_FOLDER:-$repo/.build/ape-data}"
chain_dir="$(mktemp -d)"
TALLY_APE_ANVIL_PORT="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export TALLY_APE_ANVIL_PORT

stop_anvil() {
  "$python" -m ledger.chain.anvil stop --chain-dir "$chain_dir" --port "$TALLY_APE_ANVIL_PORT" >/dev/null || true
  rm -rf "$chain_dir"
}
trap stop_anvil EXIT
"$python" -m ledger.chain.anvil start --chain-dir "$chain_dir" --port "$TALLY_APE_ANVIL_PORT"

"$ape" test tests/contracts -c tests/contracts/pytest.ini --rootdir "$repo" \
  --network ethereum:local:node --disable-isolation "$@"
