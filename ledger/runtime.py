"""Background work of a serving process (``tally serve``), started and stopped with it.

Four loops, each on its own thread and each switched off by a setting:

- ``aggregates``  (``TALLY_API_REFRESH_AGGREGATES``) tails new entries into the aggregates
  every ``TALLY_AGGREGATES_REFRESH_SECONDS`` and calls ``on_counted`` (the API wakes its
  feed's SSE streams);
- ``screening``   (``TALLY_API_DEFER_SCREENING``) screens the reports accepted since;
- ``sealer``      (``TALLY_API_SEAL_BATCHES``) seals due batches every ``TALLY_SEAL_INTERVAL_SECONDS``;
- ``anchorer``    (``TALLY_API_ANCHOR_BATCHES``) runs ``AnchorWorker`` against the chain
  (the embedded anvil is started when ``TALLY_RPC_URL`` is unset, started again if it
  dies under the server, and stopped on shutdown).

A failing loop logs and retries with backoff; it never takes the service down.
``start`` also starts the prepare workers (``LedgerApp.prepare_pool``), if there are any.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ledger.app import LedgerApp
from ledger.core.backoff import Backoff
from ledger.errors import AnchorMismatch

if TYPE_CHECKING:
    from ledger.chain.anvil import AnvilNode

__all__ = ["Runtime"]

log = logging.getLogger("tally.runtime")


class Runtime:
    def __init__(self, app: LedgerApp, *, on_counted: Callable[[], None] = lambda: None):
        self.app = app
        self.on_counted = on_counted
        self.stop_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self._anvil: AnvilNode | None = None
        self._started_anvil = False

    def start(self) -> None:
        settings = self.app.settings
        self.stop_event.clear()
        pool = self.app.prepare_pool
        if pool is not None:
            pool.start()
        if settings.api_refresh_aggregates:
            self._spawn("aggregates", self._refresh_loop)
        if self.app.defer_screening:
            self._spawn("screening", self._screening_loop)
        if settings.api_seal_batches:
            self._spawn("sealer", self._seal_loop)
        if settings.api_anchor_batches:
            self._spawn("anchorer", self._anchor_loop)

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        if self._anvil is not None and self._started_anvil:
            try:
                self._anvil.stop()
            except Exception:  # pragma: no cover - logged, shutdown goes on
                log.exception("stopping the embedded anvil failed")
            self._anvil = None

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"tally-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _repeat(self, name: str, interval: float, step: Callable[[], object]) -> None:
        """``step`` every ``interval`` seconds; after a failure, twice the interval (at least
        1 s), doubling while it keeps failing, at most 60 s."""
        backoff = Backoff(first=min(60.0, max(interval * 2, 1.0)), cap=60.0)
        while not self.stop_event.is_set():
            try:
                step()
                backoff.reset()
                pause = interval
            except Exception:
                pause = backoff.next()
                log.exception("%s loop failed; retrying in %.1f s", name, pause)
            self.stop_event.wait(pause)

    def refresh_once(self) -> int:
        counted = self.app.aggregates.refresh()
        if counted:
            self.on_counted()
        return counted

    def _refresh_loop(self) -> None:
        self._repeat("aggregates", self.app.settings.aggregates_refresh_seconds, self.refresh_once)

    def _screening_loop(self) -> None:
        review = self.app.review
        review.screen_unscreened()  # reports a previous process accepted but did not screen
        self._repeat("screening", self.app.settings.aggregates_refresh_seconds, review.screen_pending)

    def _seal_loop(self) -> None:
        batcher = self.app.batcher
        self._repeat("sealer", self.app.settings.seal_interval_seconds, batcher.seal_due)

    def _revive_embedded_chain(self, _error: Exception) -> bool:
        """The embedded anvil died under the server (killed, out of memory): start it again
        from its state on disk, and have the worker connect again (True), which finds the
        deployment or restores it. An external ``TALLY_RPC_URL`` is the operator's to keep up."""
        node = self._anvil
        if self.app.settings.rpc_url is not None or node is None or node.is_answering():
            return False
        log.error("the embedded anvil on port %d stopped answering; starting it again from %s", node.port, node.chain_dir)
        self._started_anvil = node.start() or self._started_anvil
        return True

    def _anchor_loop(self) -> None:
        from ledger.chain.anvil import AnvilNode
        from ledger.chain.deploy import open_evidence_client
        from ledger.sealing.anchoring import AnchorWorker

        settings = self.app.settings
        backoff = Backoff(first=1.0, cap=60.0)
        while not self.stop_event.is_set():
            try:
                if settings.rpc_url is None and self._anvil is None:
                    node = AnvilNode.from_settings(settings)
                    self._started_anvil = node.start()
                    self._anvil = node
                client = open_evidence_client(settings)
                worker = AnchorWorker(database=self.app.database, content=self.app.content, client=client)
                log.info("anchoring to EvidenceAnchor %s on chain %s", client.address, client.chain_id)
                worker.run(self.stop_event, on_chain_error=self._revive_embedded_chain)
                backoff.reset()  # it returns before the stop only to connect again
            except AnchorMismatch:
                log.critical("anchoring stopped: the chain holds a different root than this ledger; investigate")
                return
            except Exception:
                pause = backoff.next()
                log.exception("anchoring could not start; retrying in %.0f s", pause)
                self.stop_event.wait(pause)
