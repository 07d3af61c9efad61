"""The anchoring worker: puts sealed batch roots on chain, in order, exactly once.

For each sealed batch, lowest id first:
  1. make sure its manifest is in the content store (it was stored when sealed; pin it);
  2. sign the anchor transaction and store it in the database *before* sending it;
  3. send it (re-sending the same signed transaction is harmless);
  4. wait until the ``BatchAnchored`` event is buried under ``TALLY_CONFIRMATIONS`` blocks
     on the canonical chain, then record the transaction and block on the batch.

The contract is the authority: ``nextBatchId()`` says which batches the chain holds, and
each ``BatchAnchored`` event says where. Every step starts by reading it, so a worker
killed at any point (before sending, after sending, before recording the receipt) picks
up where the chain is on restart: a batch the chain already holds is adopted, never
anchored twice, and the contract refuses to skip an id. A root on chain that differs
from ours stops the worker with ``AnchorMismatch``.

Faults: a failing RPC makes ``step`` raise ``ChainError``; ``run`` retries with
exponential backoff while sealing and submissions go on elsewhere. A transaction still
unmined after ``replace_after`` seconds is replaced at the same nonce with higher fees
(never a second nonce, so never a duplicate). A reorg that drops an anchor before it has
its confirmations is seen as a missing event: the batch waits, and its stored transaction
is re-sent. Only confirmed anchors appear in proofs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ledger.chain.evidence import AnchoredBatch, EvidenceAnchorClient, Inclusion, SignedAnchor
from ledger.content.store import ContentStore
from ledger.core.backoff import Backoff
from ledger.core.cid import CID
from ledger.errors import AnchorMismatch, ChainError
from ledger.store import Database
from ledger.store import anchors as store
from ledger.store.anchors import UnanchoredBatch

__all__ = ["AnchorWorker", "StepResult"]

log = logging.getLogger("tally.anchoring")


@dataclass(frozen=True)
class StepResult:
    """What one step did: ``action`` is idle, sent, resent, replaced, waiting, confirmed, adopted or rewound."""

    action: str
    batch_id: int | None = None
    detail: str = ""


class AnchorWorker:
    def __init__(
        self,
        *,
        database: Database,
        content: ContentStore,
        client: EvidenceAnchorClient,
        replace_after_seconds: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.database = database
        self.content = content
        self.client = client
        self.replace_after = timedelta(seconds=replace_after_seconds)
        self.clock = clock

    # -- one step -----------------------------------------------------------------

    def step(self) -> StepResult:
        """Advance the lowest unanchored batch by one move. Raises ``ChainError`` on RPC faults."""
        batch = store.lowest_unanchored_batch(self.database)
        if batch is None:
            return self._check_still_held()
        on_chain_next = self.client.next_batch_id()
        if batch.id < on_chain_next:
            return self._confirm(batch)
        if batch.id > on_chain_next:
            return self._rewind(on_chain_next)
        return self._send(batch)

    def _confirm(self, batch: UnanchoredBatch) -> StepResult:
        """The chain holds this batch: check it is ours, and record it once it is final."""
        event = self.client.get_batch(batch.id, from_block=self.client.deploy_block)
        if event is None:
            raise ChainError(f"the contract says batch {batch.id} is anchored but no BatchAnchored event was found")
        if event.root.hex() != batch.root.removeprefix("0x"):
            raise AnchorMismatch(
                f"batch {batch.id}: the chain holds root 0x{event.root.hex()} (tx {event.tx_hash}), "
                f"but this ledger sealed root {batch.root}"
            )
        inclusion = Inclusion(event.tx_hash, event.block_number, event.block_hash, True, 0, 0)
        if not self.client.is_final(inclusion):
            self._note_sent(batch, event)
            return StepResult("waiting", batch.id, f"{self.client.confirmations(inclusion)} confirmations")
        with self.database.session() as session:
            store.record_anchor_confirmed(
                session,
                batch.id,
                chain_id=self.client.chain_id,
                contract=self.client.address,
                tx_hash=event.tx_hash,
                block_number=event.block_number,
                block_hash=event.block_hash,
                anchored_at=self.clock(),
            )
        mine = batch.anchor_pending is not None and batch.anchor_pending.get("tx_hash") == event.tx_hash
        log.info("batch %s anchored in tx %s block %s", batch.id, event.tx_hash, event.block_number)
        return StepResult("confirmed" if mine else "adopted", batch.id, event.tx_hash)

    def _note_sent(self, batch: UnanchoredBatch, event: AnchoredBatch) -> None:
        if batch.anchor_tx == event.tx_hash and batch.status == "sending":
            return
        with self.database.session() as session:
            store.record_anchor_seen(session, batch.id, tx_hash=event.tx_hash)

    def _check_still_held(self) -> StepResult:
        """Nothing left to send: the chain must still hold every batch recorded as anchored.

        A local chain restarted from an older state (anvil killed before its state dump) or a
        deep reorg loses the newest anchors; they are rolled back and anchored again.
        """
        last_anchored = store.last_anchored_batch_id(self.database)
        if last_anchored is not None:
            on_chain_next = self.client.next_batch_id()
            if last_anchored >= on_chain_next:
                return self._rewind(on_chain_next)
        return StepResult("idle")

    def _rewind(self, on_chain_next: int) -> StepResult:
        """The chain holds fewer batches than we thought (a deep reorg or a reset chain)."""
        with self.database.session() as session:
            rolled_back = store.roll_back_anchors(session, from_batch_id=on_chain_next)
        if not rolled_back:
            raise ChainError(f"the chain expects batch {on_chain_next} next, but this ledger has not sealed it")
        log.warning("chain holds batches below %s only; %s anchors rolled back", on_chain_next, rolled_back)
        return StepResult("rewound", on_chain_next, f"{rolled_back} batches")

    def _send(self, batch: UnanchoredBatch) -> StepResult:
        """Batch ``batch.id`` is next on chain: send (or re-send, or replace) its anchor."""
        now = self.clock()
        if batch.anchor_pending:
            signed = SignedAnchor.from_json(batch.anchor_pending)
            inclusion = self.client.get_inclusion(signed.tx_hash)
            if inclusion is not None and not inclusion.succeeded:
                log.warning("anchor tx %s of batch %s reverted; signing a new one", signed.tx_hash, batch.id)
            elif inclusion is None and signed.nonce != (mined_nonce := self.client.mined_nonce()):
                # Batch ids before this one are all mined, so its transaction must use the next
                # nonce; one that does not (the chain lost blocks) could never be mined.
                log.warning(
                    "anchor tx %s of batch %s has nonce %s, but the chain's next is %s; signing a new one",
                    signed.tx_hash,
                    batch.id,
                    signed.nonce,
                    mined_nonce,
                )
            elif batch.anchor_sent_at is not None and now - batch.anchor_sent_at >= self.replace_after and inclusion is None:
                replacement = self.client.sign_anchor(
                    signed.batch_id,
                    signed.root,
                    signed.record_count,
                    signed.manifest_cid,
                    nonce=signed.nonce,
                    fees=self.client.suggest_fees().at_least(signed.fees.bumped()),
                    gas_limit=signed.gas_limit,
                )
                self._store_pending(batch.id, replacement, now)
                self.client.send(replacement)
                return StepResult("replaced", batch.id, replacement.tx_hash)
            else:
                self.client.send(signed)  # harmless if the node has it or mined it
                return StepResult("resent" if inclusion is None else "waiting", batch.id, signed.tx_hash)
        self._ensure_manifest(batch)
        signed = self.client.sign_anchor(
            batch.id,
            bytes.fromhex(batch.root.removeprefix("0x")),
            batch.record_count,
            batch.manifest_cid,
            nonce=self.client.mined_nonce(),
        )
        self._store_pending(batch.id, signed, now)
        self.client.send(signed)
        log.info("batch %s: anchor sent in tx %s (nonce %s)", batch.id, signed.tx_hash, signed.nonce)
        return StepResult("sent", batch.id, signed.tx_hash)

    def _store_pending(self, batch_id: int, signed: SignedAnchor, now: datetime) -> None:
        """Commit the signed transaction, before it is sent: a crash after this re-sends it."""
        with self.database.session() as session:
            store.record_anchor_signed(
                session, batch_id, anchor_pending=signed.to_json(), tx_hash=signed.tx_hash, nonce=signed.nonce, sent_at=now
            )

    def _ensure_manifest(self, batch: UnanchoredBatch) -> None:
        manifest = CID.parse(batch.manifest_cid)
        if not self.content.has_block(manifest):
            raise ChainError(f"batch {batch.id}: manifest {manifest} is missing from the content store; refusing to anchor it")
        self.content.pin(manifest)

    # -- loops --------------------------------------------------------------------

    def drain(self, *, timeout: float = 60.0, poll_interval: float = 0.2) -> int:
        """Step until every sealed batch is anchored and confirmed; returns batches anchored."""
        anchored = 0
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                result = self.step()
                if result.action == "idle":
                    return anchored
                anchored += result.action in ("confirmed", "adopted")
                if result.action in ("waiting", "resent", "sent", "replaced"):
                    deadline.wait(poll_interval)
        finally:
            timer.cancel()
        raise ChainError(f"anchoring did not finish within {timeout:.0f} s")

    def run(
        self,
        stop: threading.Event,
        *,
        poll_interval: float = 0.5,
        max_backoff: float = 60.0,
        on_chain_error: Callable[[ChainError], bool] | None = None,
    ) -> None:
        """Work until ``stop`` is set; RPC faults back off exponentially and never stop the loop.

        ``on_chain_error`` is told of each RPC fault before the pause (the API's runtime
        restarts the embedded anvil there if it died); when it answers True, ``run``
        returns, so that the caller connects again (and finds or restores the deployment)."""
        backoff = Backoff(first=poll_interval, cap=max_backoff)
        while not stop.is_set():
            try:
                result = self.step()
            except AnchorMismatch:
                log.exception("anchoring stopped: the chain disagrees with this ledger")
                raise
            except ChainError as error:
                pause = backoff.next()
                log.warning("anchoring paused for %.1f s: %s", pause, error)
                if on_chain_error is not None:
                    try:
                        if on_chain_error(error):
                            return
                    except Exception:  # noqa: BLE001 - the watchdog's own fault never stops anchoring
                        log.exception("recovering from the chain fault failed")
                stop.wait(pause)
                continue
            backoff.reset()
            if result.action in ("idle", "waiting", "resent", "sent", "replaced"):
                stop.wait(poll_interval)
