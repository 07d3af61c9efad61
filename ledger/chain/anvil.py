"""The embedded local chain: one anvil process per data directory.

anvil comes from node_modules (``@foundry-rs/anvil``, pinned in package.json), listens on
127.0.0.1 only and keeps everything in ``settings.chain_dir``:

    chain/anvil-state.json       the chain (accounts, blocks, receipts, logs) as of the last
                                 start or clean stop; anvil only reads it (``--load-state``)
    chain/anvil-state.dump.json  what anvil writes every ``state_interval_seconds`` and on a
                                 clean stop (``--dump-state``); promoted to anvil-state.json
                                 at the next start or stop
    chain/anvil-genesis.json     ``tally-anvil-genesis-v1``: the chain id and the timestamp of
                                 block 0, so that every start builds the same genesis block
    chain/anvil-cache/           anvil's state cache (instead of ~/.foundry)
    chain/anvil.pid              "<pid> <port>" of the running process
    chain/anvil.log              its output

Why it is done so (anvil 1.7.1):

- anvil builds a genesis block from the clock at every start, then adds the blocks of the
  state it loads, and dumps both. With ``--state`` alone each restart added one more block
  0 to the file, and which one the node served changed from start to start (a "new chain"
  to the deployment check). Every start here passes the genesis timestamp of this chain
  (``--timestamp``), so the genesis block it builds is the one in the state file, and then
  sets the node's clock back to the wall clock (``evm_setTime``). A state file that an
  older version left with several blocks 0 is repaired at start: the earliest is the chain's
  (every later one was built by a later start), the others are dropped.
- anvil rewrites its dump in place (truncate, then write). Reading one file and dumping to
  another keeps a complete state on disk at every moment: a kill -9 loses at most the last
  ``state_interval_seconds`` of blocks, or, if it strikes while the dump is being written,
  the blocks since the last start. The chain is then a shorter version of the same chain
  (same genesis): the deployment is re-sent from its recorded signed transaction
  (:mod:`ledger.chain.deploy`) and the anchoring worker re-anchors the batches the contract
  no longer holds (:mod:`ledger.sealing.anchoring`).

Several processes of the ledger (API, worker, CLI) may share one anvil: :meth:`AnvilNode.start`
adopts a running anvil whose pid file is in the same chain directory, and refuses a port
held by anything else. Only the process that started an anvil stops it (``with AnvilNode(...)``
or ``stop()``); a start that fails stops the process it launched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import time
from pathlib import Path

import requests

from ledger.errors import ChainError
from ledger.settings import Settings

__all__ = ["DEFAULT_CHAIN_ID", "GENESIS_FORMAT", "AnvilNode", "find_anvil_binary", "repair_state_document"]

log = logging.getLogger("tally.chain")

DEFAULT_CHAIN_ID = 31337
GENESIS_FORMAT = "tally-anvil-genesis-v1"
REPO_ROOT = Path(__file__).resolve().parents[2]
_PLATFORM_PACKAGES = {
    ("Linux", "x86_64"): "anvil-linux-amd64",
    ("Linux", "aarch64"): "anvil-linux-arm64",
    ("Darwin", "x86_64"): "anvil-darwin-amd64",
    ("Darwin", "arm64"): "anvil-darwin-arm64",
    ("Windows", "AMD64"): "anvil-win32-amd64",
}


def find_anvil_binary(node_modules: Path = REPO_ROOT / "node_modules") -> Path:
    """The anvil executable from ``@foundry-rs/anvil-<platform>``, else ``anvil`` on PATH."""
    package = _PLATFORM_PACKAGES.get((platform.system(), platform.machine()))
    if package is not None:
        name = "anvil.exe" if platform.system() == "Windows" else "anvil"
        candidate = node_modules / "@foundry-rs" / package / "bin" / name
        if candidate.is_file():
            return candidate
    on_path = shutil.which("anvil")
    if on_path is not None:
        return Path(on_path)
    raise ChainError(
        f"anvil was not found in {node_modules}/@foundry-rs/{package or '<platform package>'}/bin "
        "nor on PATH; run `npm ci` in the repository root (scripts/setup.sh does)"
    )


class AnvilNode:
    """One anvil process whose state lives in ``chain_dir``."""

    def __init__(
        self,
        *,
        chain_dir: Path,
        port: int = 8545,
        chain_id: int = DEFAULT_CHAIN_ID,
        binary: Path | None = None,
        state_interval_seconds: int = 5,
    ) -> None:
        self.chain_dir = chain_dir
        self.port = port
        self.chain_id = chain_id
        self.binary = binary
        self.state_interval_seconds = state_interval_seconds
        self._process: subprocess.Popen[bytes] | None = None
        self._started_here = False

    @classmethod
    def from_settings(cls, settings: Settings) -> AnvilNode:
        return cls(
            chain_dir=settings.chain_dir,
            port=settings.anvil_port,
            chain_id=settings.chain_id or DEFAULT_CHAIN_ID,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.chain_dir / "anvil-state.json"

    @property
    def dump_file(self) -> Path:
        return self.chain_dir / "anvil-state.dump.json"

    @property
    def genesis_file(self) -> Path:
        return self.chain_dir / "anvil-genesis.json"

    @property
    def pid_file(self) -> Path:
        return self.chain_dir / "anvil.pid"

    @property
    def log_file(self) -> Path:
        return self.chain_dir / "anvil.log"

    def command(self, *, genesis_timestamp: int, load_state: bool) -> list[str]:
        binary = self.binary or find_anvil_binary()
        command = [
            str(binary),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--timestamp", str(genesis_timestamp),
            "--dump-state", str(self.dump_file),
            "--state-interval", str(self.state_interval_seconds),
            "--cache-path", str(self.chain_dir / "anvil-cache"),
        ]  # fmt: skip
        if load_state:
            command += ["--load-state", str(self.state_file)]
        return command

    # -- status -------------------------------------------------------------------------

    def rpc(self, method: str, params: list[object] | None = None, *, timeout: float = 5.0) -> object:
        """One JSON-RPC call to this node; errors become :class:`ChainError`."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
        try:
            response = requests.post(self.url, json=body, timeout=timeout)
            response.raise_for_status()
            answer = response.json()
        except (requests.RequestException, ValueError) as error:
            raise ChainError(f"anvil at {self.url} did not answer {method}: {error}") from error
        if "error" in answer:
            raise ChainError(f"anvil at {self.url} refused {method}: {answer['error']}")
        return answer.get("result")

    def is_answering(self) -> bool:
        try:
            self.rpc("eth_chainId", timeout=1.0)
        except ChainError:
            return False
        return True

    def running_pid(self) -> int | None:
        """The pid in this chain directory's pid file, if that process is a live anvil.

        Raises ChainError if it is alive but serving another port: two anvils must never
        share one state file.
        """
        try:
            pid_text, port_text = self.pid_file.read_text().split()
            pid, port = int(pid_text), int(port_text)
        except (OSError, ValueError):
            return None
        if not _is_live_anvil(pid):
            return None
        if port != self.port:
            raise ChainError(
                f"the anvil of {self.chain_dir} already runs on port {port} (pid {pid}), not {self.port}; "
                f"stop it first (python -m ledger.chain.anvil stop --port {port}) or set TALLY_ANVIL_PORT={port}"
            )
        return pid

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, *, timeout: float = 30.0) -> bool:
        """Makes sure this directory's anvil answers on the port.

        Returns True if it started a process, False if it adopted one already running.
        Raises :class:`ChainError` if the port is held by another node or anvil fails to start;
        then no process it launched is left running.
        """
        self.chain_dir.mkdir(parents=True, exist_ok=True)
        if self.running_pid() is not None:
            self._wait_until_answering(timeout)
            return False
        if self.is_answering():
            client = self._client_version()
            raise ChainError(
                f"port {self.port} is already served by another node ({client}) that does not keep "
                f"its state in {self.chain_dir}; stop it or set TALLY_ANVIL_PORT to a free port"
            )
        genesis_timestamp, load_state = self.prepare_state()
        with self.log_file.open("ab") as log_handle:
            self._process = subprocess.Popen(
                self.command(genesis_timestamp=genesis_timestamp, load_state=load_state),
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives this process; the next one adopts it
            )
        self.pid_file.write_text(f"{self._process.pid} {self.port}\n")
        try:
            self._wait_until_answering(timeout)
            self._check_genesis(genesis_timestamp)
            self._set_clock()
        except BaseException:
            self._abandon_start()
            raise
        return True

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stops this directory's anvil so that it writes its state. True if one was running."""
        pid = self._process.pid if self._process is not None else self.running_pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_for_exit(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_for_exit(pid, 5.0)
            self.pid_file.unlink(missing_ok=True)
            self._process = None
            raise ChainError(
                f"anvil (pid {pid}) did not stop within {timeout:g}s and was killed; its state file "
                f"may miss the last {self.state_interval_seconds}s of blocks"
            )
        self.pid_file.unlink(missing_ok=True)
        self._process = None
        self._promote_dump()
        return True

    # -- the state files ----------------------------------------------------------------

    def prepare_state(self) -> tuple[int, bool]:
        """Before a start: the genesis timestamp of this chain, and whether there is a state to load.

        Promotes a complete dump to the state file, repairs a state file holding several
        blocks 0, and records the genesis timestamp (a new chain takes the clock's).
        Raises ChainError if the state file is unreadable.
        """
        self._promote_dump()
        document = None
        if self.state_file.exists():
            document = _read_state(self.state_file)
            if document is None:
                raise ChainError(
                    f"{self.state_file} is not a complete anvil state (truncated or not JSON); restore it "
                    f"from a backup, or move it away to start the chain again from its genesis block"
                )
            repaired, dropped = repair_state_document(document)
            if dropped:
                backup = self.state_file.with_name("anvil-state.before-repair.json")
                shutil.copy2(self.state_file, backup)
                _write_json_atomically(self.state_file, repaired)
                log.warning(
                    "%s held %s blocks 0; kept the chain's own (timestamp %s), dropped %s (copy kept in %s)",
                    self.state_file,
                    dropped + 1,
                    _genesis_timestamp(repaired),
                    dropped,
                    backup.name,
                )
            document = repaired
        recorded = self._recorded_genesis_timestamp()
        if document is not None:
            genesis_timestamp = _genesis_timestamp(document)
        elif recorded is not None:
            genesis_timestamp = recorded  # the state was lost: the same chain, from its genesis again
            log.warning("%s is missing: anvil starts this chain again from its genesis block", self.state_file)
        else:
            genesis_timestamp = int(time.time())
        if recorded != genesis_timestamp:
            _write_json_atomically(
                self.genesis_file,
                {"format": GENESIS_FORMAT, "chain_id": self.chain_id, "genesis_timestamp": genesis_timestamp},
            )
        return genesis_timestamp, document is not None

    def _recorded_genesis_timestamp(self) -> int | None:
        try:
            document = json.loads(self.genesis_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise ChainError(f"{self.genesis_file}: unreadable ({error}); move it away to start afresh") from error
        if not isinstance(document, dict) or document.get("format") != GENESIS_FORMAT:
            raise ChainError(f"{self.genesis_file}: expected format {GENESIS_FORMAT!r}")
        if document.get("chain_id") != self.chain_id:
            raise ChainError(
                f"{self.genesis_file} records chain id {document.get('chain_id')}, but this node runs chain id "
                f"{self.chain_id}; set TALLY_CHAIN_ID={document.get('chain_id')} or use another data directory"
            )
        timestamp = document.get("genesis_timestamp")
        if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp <= 0:
            raise ChainError(f"{self.genesis_file}: genesis_timestamp must be a positive integer, not {timestamp!r}")
        return timestamp

    def _promote_dump(self) -> None:
        """A complete dump becomes the state file; a torn one (kill -9 while writing) is set aside."""
        if not self.dump_file.exists():
            return
        document = _read_state(self.dump_file)
        if document is None:
            torn = self.dump_file.with_name("anvil-state.dump.torn.json")
            os.replace(self.dump_file, torn)
            log.warning(
                "%s is incomplete (anvil was killed while writing it); set aside as %s, the chain restarts from %s",
                self.dump_file,
                torn.name,
                self.state_file,
            )
            return
        repaired, dropped = repair_state_document(document)
        if dropped:
            _write_json_atomically(self.state_file, repaired)
            self.dump_file.unlink()
        else:
            with self.dump_file.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(self.dump_file, self.state_file)

    def _check_genesis(self, genesis_timestamp: int) -> None:
        block = self.rpc("eth_getBlockByNumber", ["0x0", False])
        found = int(block["timestamp"], 16) if isinstance(block, dict) else None
        if found != genesis_timestamp:
            raise ChainError(
                f"anvil serves a genesis block with timestamp {found}, not {genesis_timestamp} as "
                f"{self.genesis_file} records; see {self.log_file}"
            )

    def _set_clock(self) -> None:
        """``--timestamp`` also sets the node's clock; new blocks must carry the wall-clock time."""
        latest = self.rpc("eth_getBlockByNumber", ["latest", False])
        latest_timestamp = int(latest["timestamp"], 16) if isinstance(latest, dict) else 0
        self.rpc("evm_setTime", [max(int(time.time()), latest_timestamp)])

    def _abandon_start(self) -> None:
        """Stops the process this start launched (it failed to come up) and removes its pid file."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5.0)
        self.pid_file.unlink(missing_ok=True)

    def __enter__(self) -> AnvilNode:
        self._started_here = self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._started_here:
            self.stop()

    # -- local-chain helpers ------------------------------------------------------------

    def set_balance(self, address: str, wei: int) -> None:
        """Gives ``address`` exactly ``wei`` (anvil only; used to fund the local anchorer)."""
        self.rpc("anvil_setBalance", [address, hex(wei)])

    def _client_version(self) -> str:
        try:
            return str(self.rpc("web3_clientVersion", timeout=1.0))
        except ChainError:
            return "unknown client"

    def _wait_until_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ChainError(
                    f"anvil exited with code {self._process.returncode} while starting; "
                    f"last lines of {self.log_file}:\n{_tail(self.log_file)}"
                )
            if self.is_answering():
                return
            time.sleep(0.05)
        raise ChainError(f"anvil did not answer on {self.url} within {timeout:g}s; see {self.log_file}")

    def _wait_for_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.pid == pid:
                if self._process.poll() is not None:
                    return True
            elif not _is_live_anvil(pid):
                return True
            time.sleep(0.05)
        return False


def _is_live_anvil(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # Linux: make sure the pid was not reused by another program
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            return False
        return bool(argv) and Path(argv[0].decode(errors="replace")).name.startswith("anvil")
    return True


def repair_state_document(document: dict[str, object]) -> tuple[dict[str, object], int]:
    """The state with one block 0, the earliest, and how many others were dropped.

    Each start of anvil before this module passed ``--timestamp`` built a new genesis block
    from the clock and dumped it beside the loaded ones; the chain's own is the earliest.
    """
    blocks = document.get("blocks")
    if not isinstance(blocks, list):
        return document, 0
    genesis = [block for block in blocks if _block_number(block) == 0]
    if len(genesis) <= 1:
        return document, 0
    keep = min(genesis, key=lambda block: int(block["header"]["timestamp"], 16))
    repaired = dict(document)
    repaired["blocks"] = [block for block in blocks if _block_number(block) != 0 or block is keep]
    return repaired, len(genesis) - 1


def _block_number(block: object) -> int | None:
    try:
        return int(block["header"]["number"], 16)  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None


def _genesis_timestamp(document: dict[str, object]) -> int:
    blocks = document.get("blocks")
    for block in blocks if isinstance(blocks, list) else []:
        if _block_number(block) == 0:
            return int(block["header"]["timestamp"], 16)
    raise ChainError("the anvil state holds no genesis block")


def _read_state(path: Path) -> dict[str, object] | None:
    """The parsed anvil state, or None if it is not a complete one."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("blocks"), list):
        return None
    if not any(_block_number(block) == 0 for block in document["blocks"]):
        return None
    return document


def _write_json_atomically(path: Path, document: object) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(document, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> int:
    """``python -m ledger.chain.anvil start|stop|status [--chain-dir DIR] [--port N]``.

    Without options it uses the settings (``TALLY_DATA_DIR``, ``TALLY_ANVIL_PORT``).
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ledger.chain.anvil", description="Run the embedded anvil.")
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--chain-dir", type=Path, help="default: $TALLY_DATA_DIR/chain")
    parser.add_argument("--port", type=int, help="default: $TALLY_ANVIL_PORT (8545)")
    arguments = parser.parse_args(argv)
    node = AnvilNode.from_settings(Settings())
    if arguments.chain_dir is not None:
        node.chain_dir = arguments.chain_dir.resolve()
    if arguments.port is not None:
        node.port = arguments.port
    try:
        if arguments.action == "start":
            started = node.start()
            print(f"anvil {'started' if started else 'already running'} at {node.url}, state in {node.state_file}")
        elif arguments.action == "stop":
            print("anvil stopped" if node.stop() else "anvil was not running")
        else:
            pid = node.running_pid()
            print(f"anvil running at {node.url} (pid {pid})" if pid else "anvil is not running")
            return 0 if pid else 3
    except ChainError as error:
        print(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
