"""Where the auditor reads content, and how: every byte a source returns is checked against its CID.

A source can withhold content (the check names what is missing) but never alter it
unnoticed. ``spec`` says how another process opens the same source, so that the worker
processes of ``verify all`` can read it too (None: it cannot be shared, e.g. a gateway).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

import httpx

from ledger.content.car import import_car
from ledger.content.local import LocalBlockStore
from ledger.content.store import ContentStore
from ledger.core.backoff import Backoff
from ledger.core.cid import CID
from ledger.core.unixfs import file_cid, iter_file_bytes
from ledger.errors import LedgerError, NotFound

__all__ = ["ContentSource", "GatewaySource", "StoreSource", "open_source", "polite_get"]


class ContentSource(Protocol):
    spec: str | None

    def node_block(self, cid: CID) -> bytes:
        """One block (a DAG-CBOR record, a dag-pb node, a raw leaf), checked against its CID."""

    def file_bytes(self, cid: CID) -> bytes:
        """A whole UnixFS file, checked against its CID."""

    def check_file(self, cid: CID) -> int:
        """Re-hash every block of the UnixFS file ``cid`` (dag-pb nodes and raw leaves) and
        check the sizes its nodes record; the file's size. Raises ``LedgerError`` naming the
        block that is missing or does not hash to its CID."""


def polite_get(client: Any, url: str, *, params: dict[str, str] | None = None, attempts: int = 8) -> Any:
    """GET that waits out 429 answers (``Retry-After``, kept within 0.05 and 30 s; 1 s when
    it is missing or not a number of seconds), as a well-behaved client does."""
    backoff = Backoff(first=1.0, cap=30.0, factor=1.0, floor=0.05)
    for attempt in range(attempts):
        response = client.get(url, params=params) if params else client.get(url)
        if response.status_code != 429 or attempt == attempts - 1:
            return response
        try:
            stated: float | None = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            stated = None
        time.sleep(backoff.next(stated))
    return response


class StoreSource:
    """Any content store (local block store, Kubo node, an imported CAR file); the auditor
    checks every block against its hash again, whatever the store already checked."""

    def __init__(self, store: ContentStore, label: str, spec: str | None = None):
        self.store = store
        self.label = label
        self.spec = spec
        """How another process opens the same source (``open_source``); None if it cannot."""

    def node_block(self, cid: CID) -> bytes:
        block = self.store.get_block(cid)
        if not cid.verify_block(block):
            raise LedgerError(f"{self.label} returned bytes for {cid} that do not hash to it")
        return block

    def file_bytes(self, cid: CID) -> bytes:
        data = b"".join(self.store.cat(cid))
        if file_cid(data) != cid:
            raise LedgerError(f"{self.label} returned a file for {cid} whose CID is {file_cid(data)}")
        return data

    def check_file(self, cid: CID) -> int:
        # The walk fetches every block of the DAG through node_block (so each is re-hashed)
        # and checks every recorded size; the bytes are counted, not kept.
        return sum(len(piece) for piece in iter_file_bytes(cid, self.node_block))


class GatewaySource:
    """A ledger's ``/v1/content/{cid}``: untrusted, so every answer is re-hashed."""

    def __init__(self, base_url: str, client: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.Client(timeout=60)
        self.label = f"gateway {self.base_url}"
        self.spec: str | None = None  # a ledger's gateway is asked by one process at a time (and with its key)

    def _get(self, cid: CID) -> bytes:
        response = polite_get(self.client, f"{self.base_url}/v1/content/{cid}", params={"format": "raw"})
        if response.status_code == 404:
            raise NotFound(f"{self.label} does not have {cid}")
        if response.status_code != 200:
            raise LedgerError(f"{self.label} answered {response.status_code} for {cid}")
        body: bytes = response.content
        return body

    def node_block(self, cid: CID) -> bytes:
        block = self._get(cid)
        if not cid.verify_block(block):
            raise LedgerError(f"{self.label} served bytes for {cid} that do not hash to it")
        return block

    def file_bytes(self, cid: CID) -> bytes:
        data = self._get(cid)
        if file_cid(data) != cid:
            raise LedgerError(f"{self.label} served a file for {cid} whose CID is {file_cid(data)}")
        return data

    def check_file(self, cid: CID) -> int:
        # A gateway serves a file's bytes, not its blocks: rebuilding the DAG from them
        # (file_bytes) re-hashes every block the CID commits to.
        return len(self.file_bytes(cid))


def open_source(spec: str, *, scratch: Path, client: httpx.Client | None = None) -> ContentSource:
    """``car:FILE``, ``ipfs:URL`` (Kubo RPC API), ``blocks:DIR`` (a local block store) or an
    ``http(s)://`` ledger gateway."""
    kind, _, rest = spec.partition(":")
    if kind == "car":
        store = LocalBlockStore(scratch / "car-blocks")
        import_car(store, Path(rest))
        return StoreSource(store, f"CAR file {rest}", spec=f"blocks:{scratch / 'car-blocks'}")
    if kind == "ipfs":
        from ledger.content.kubo import KuboStore

        return StoreSource(KuboStore(rest), f"IPFS node {rest}", spec=spec)
    if kind == "blocks":
        return StoreSource(LocalBlockStore(Path(rest)), f"block store {rest}", spec=spec)
    if kind in ("http", "https"):
        return GatewaySource(spec, client)
    raise ValueError(f"unknown content source {spec!r}: use car:FILE, ipfs:URL, blocks:DIR or an http(s) gateway URL")
