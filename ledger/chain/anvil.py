"""The embedded local chain: one anvil process per data directory.

anvil comes from node_modules (``@foundry-rs/anvil``, pinned in package.json; found by
``ledger.chain.anvil_binary``), listens on 127.0.0.1 only and keeps everything in
``settings.chain_dir``: its state files (``ledger.chain.anvil_state``, which also says why
every start passes the chain's genesis timestamp and reads one file while dumping to
another), ``anvil.pid`` ("<pid> <port>" of the running process) and ``anvil.log``.

Several processes of the ledger (API, worker, CLI) may share one anvil: :meth:`AnvilNode.start`
adopts a running anvil whose pid file is in the same chain directory, and refuses a port
held by anything else. Only the process that started an anvil stops it (``with AnvilNode(...)``
or ``stop()``); a start that fails stops the process it launched.

``python -m ledger.chain.anvil start|stop|status`` runs it from the shell.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from ledger.chain.anvil_binary import find_anvil_binary
from ledger.chain.anvil_state import GENESIS_FORMAT, AnvilState, repair_state_document
from ledger.errors import ChainError
from ledger.settings import Settings

__all__ = ["DEFAULT_CHAIN_ID", "GENESIS_FORMAT", "AnvilNode", "find_anvil_binary", "repair_state_document"]


DEFAULT_CHAIN_ID = 31337


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
    def state(self) -> AnvilState:
        """The state files of this node's chain directory (``ledger.chain.anvil_state``)."""
        return AnvilState(self.chain_dir, self.chain_id)

    @property
    def state_file(self) -> Path:
        return self.state.state_file

    @property
    def dump_file(self) -> Path:
        return self.state.dump_file

    @property
    def genesis_file(self) -> Path:
        return self.state.genesis_file

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
        self.state.promote_dump()
        return True

    # -- the state files ----------------------------------------------------------------

    def prepare_state(self) -> tuple[int, bool]:
        """Before a start: the genesis timestamp of this chain, and whether there is a state
        to load (``AnvilState.prepare``: promotes a dump, repairs, records the genesis)."""
        return self.state.prepare()

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
