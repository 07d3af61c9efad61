"""The content store on an IPFS node, over the Kubo RPC API (``/api/v0``, every call a POST).

A small client of its own on httpx. It trusts the node for nothing it can check:

- ``put_block`` hashes the block first and compares the CID the node answers with;
- ``add_file`` computes the file's root CID locally while uploading it and compares it
  with the node's (so a node with other import settings is caught, not silently used);
- ``get_block`` re-hashes what the node returns; ``cat`` walks the file block by block
  through ``get_block``, so every byte handed out has been verified.

Reads are local to the node by default (``offline=True`` sends Kubo's global ``offline``
option, and every lookup carries ``timeout=<lookup_timeout>s``): a block the node lacks is a
quick ``BlockNotFound``, not a search of the whole network. js-ipfs (used as the test peer)
ignores ``offline`` and waits for the lookup timeout instead.

Dialects: Kubo takes ``block/put?cid-codec=…``; js-ipfs only knows the legacy
``format=…&version=1``. The first ``put_block`` that comes back with the right multihash
under the wrong codec switches this client to the legacy form for good.

httpx errors become ``ContentStoreError``; "not found" answers become ``BlockNotFound``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

from ledger.content.store import decode_node
from ledger.core import dagcbor
from ledger.core.cid import CID, DAG_CBOR, DAG_JSON, DAG_PB, RAW, SHA2_256
from ledger.core.unixfs import CHUNK_SIZE, FileDagBuilder, iter_file_bytes
from ledger.errors import BlockNotFound, ContentStoreError, InvalidCID

__all__ = ["KuboStore"]

_CODEC_NAMES = {RAW: "raw", DAG_PB: "dag-pb", DAG_CBOR: "dag-cbor", DAG_JSON: "dag-json"}
_NOT_FOUND_MARKERS = ("not found", "could not find", "timed out", "no such block", "blockservice: key not found")
_UPLOAD_PIECE = 1 << 20


def _seconds(value: float) -> str:
    return f"{max(value, 0.001):.3f}s"


class KuboStore:
    """A :class:`~ledger.content.store.ContentStore` backed by a Kubo (or js-ipfs) RPC endpoint.

    ``api_url`` is the RPC root, e.g. ``http://127.0.0.1:5001``. ``timeout`` bounds each
    HTTP request; ``lookup_timeout`` bounds how long the node may look for a block it does
    not have. ``pin_files`` pins files added with ``add_file`` (as ``ipfs add`` does);
    blocks and nodes are not pinned on write: pin a batch root with :meth:`pin`.
    """

    def __init__(
        self,
        api_url: str,
        timeout: float = 30.0,
        *,
        offline: bool = True,
        lookup_timeout: float = 10.0,
        pin_files: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base = api_url.rstrip("/")
        if base.endswith("/api/v0"):
            base = base[: -len("/api/v0")]
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"the IPFS API URL must start with http:// or https://, got {api_url!r}")
        self.api_url = base
        self.timeout = timeout
        self.offline = offline
        self.lookup_timeout = lookup_timeout
        self.pin_files = pin_files
        self._legacy_block_put = False
        self._client = httpx.Client(base_url=f"{base}/api/v0/", timeout=httpx.Timeout(timeout), transport=transport)

    def __repr__(self) -> str:
        return f"KuboStore({self.api_url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KuboStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transport ----------------------------------------------------------------------

    def _lookup_params(self) -> list[tuple[str, str]]:
        params = [("timeout", _seconds(self.lookup_timeout))]
        if self.offline:
            params.append(("offline", "true"))
        return params

    def _raise_for(self, endpoint: str, response: httpx.Response, subject: CID | None) -> None:
        if response.status_code < 400:
            return
        try:
            body = response.read()
        except httpx.HTTPError:
            body = b""
        message = body.decode("utf-8", "replace").strip()
        with contextlib.suppress(ValueError):
            parsed = json.loads(message)
            if isinstance(parsed, dict) and isinstance(parsed.get("Message"), str):
                message = parsed["Message"]
        message = message[:500] or response.reason_phrase
        if subject is not None and any(marker in message.lower() for marker in _NOT_FOUND_MARKERS):
            raise BlockNotFound(f"the IPFS node at {self.api_url} does not have {subject} ({endpoint}: {message})")
        raise ContentStoreError(f"the IPFS node at {self.api_url} refused {endpoint}: HTTP {response.status_code}: {message}")

    def _post(
        self,
        endpoint: str,
        params: list[tuple[str, str]],
        *,
        subject: CID | None = None,
        files: dict[str, Any] | None = None,
        content: Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self._client.post(endpoint, params=tuple(params), files=files, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise ContentStoreError(f"the IPFS node at {self.api_url} did not answer {endpoint} within {self.timeout} s") from exc
        except httpx.HTTPError as exc:
            raise ContentStoreError(f"cannot reach the IPFS node at {self.api_url} ({endpoint}): {exc}") from exc
        self._raise_for(endpoint, response, subject)
        return response

    def _json(self, endpoint: str, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ContentStoreError(
                f"the IPFS node at {self.api_url} sent a non-JSON answer to {endpoint}: {response.text[:200]!r}"
            ) from exc

    def _json_lines(self, endpoint: str, response: httpx.Response) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        for line in response.text.splitlines():
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                raise ContentStoreError(
                    f"the IPFS node at {self.api_url} sent a malformed line to {endpoint}: {line[:200]!r}"
                ) from exc
            if isinstance(value, dict):
                if value.get("Type") == "error" and "Message" in value:
                    raise ContentStoreError(f"the IPFS node at {self.api_url} failed {endpoint}: {value['Message']}")
                objects.append(value)
        return objects

    @staticmethod
    def _multipart(
        pieces: Iterable[bytes], on_piece: Callable[[bytes], object] | None = None
    ) -> tuple[Iterator[bytes], dict[str, str]]:
        boundary = f"tally-{secrets.token_hex(16)}"

        def body() -> Iterator[bytes]:
            yield (
                f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="file"; filename="file"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode("ascii")
            for piece in pieces:
                if on_piece is not None:
                    on_piece(piece)
                if piece:
                    yield bytes(piece)
            yield f"\r\n--{boundary}--\r\n".encode("ascii")

        return body(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}

    # -- node -----------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        """The node's ``/api/v0/version`` answer (``Version``, ``Commit``, ``Repo``, …)."""
        result = self._json("version", self._post("version", []))
        if not isinstance(result, dict):
            raise ContentStoreError(f"unexpected answer to version from {self.api_url}: {result!r}")
        return result

    def id(self) -> dict[str, Any]:
        """The node's ``/api/v0/id`` answer (``ID``, ``AgentVersion``, …)."""
        result = self._json("id", self._post("id", []))
        if not isinstance(result, dict):
            raise ContentStoreError(f"unexpected answer to id from {self.api_url}: {result!r}")
        return result

    # -- blocks ---------------------------------------------------------------------------

    def put_block(self, cid: CID, block: bytes) -> None:
        """Store ``block``; raises ``InvalidCID`` if it does not hash to ``cid``, ``ContentStoreError`` if the node disagrees."""
        if cid.hash_code != SHA2_256:
            raise InvalidCID(f"{cid} uses multihash 0x{cid.hash_code:x}; only sha2-256 blocks are stored")
        if not cid.verify_block(block):
            raise InvalidCID(f"block of {len(block)} bytes does not hash to {cid}; its raw CID would be {CID.of(RAW, block)}")
        codec = _CODEC_NAMES.get(cid.codec)
        if codec is None:
            raise InvalidCID(f"{cid} has codec {cid.codec_name}, which the IPFS RPC API cannot be asked for")
        returned = self._block_put(cid, codec, block)
        if self._same(returned, cid):
            return
        if returned.multihash == cid.multihash and not self._legacy_block_put:
            # A node that ignored cid-codec (js-ipfs): ask again in the legacy dialect.
            self._legacy_block_put = True
            returned = self._block_put(cid, codec, block)
            if self._same(returned, cid):
                return
        raise ContentStoreError(f"the IPFS node at {self.api_url} stored the block as {returned}, expected {cid}")

    @staticmethod
    def _same(returned: CID, cid: CID) -> bool:
        # A CIDv0 is a dag-pb CIDv1 written differently: the node may answer with either.
        return (
            returned.codec == cid.codec
            and returned.multihash == cid.multihash
            and (returned.version == cid.version or cid.version == 0 or returned.version == 0)
        )

    def _block_put(self, cid: CID, codec: str, block: bytes) -> CID:
        params = [("mhtype", "sha2-256"), ("pin", "false"), ("cid-base", "base32")]
        if self._legacy_block_put:
            params += [("format", codec), ("version", "1")]
        else:
            params += [("cid-codec", codec), ("allow-big-block", "false")]
        response = self._post("block/put", params, files={"file": ("block", block, "application/octet-stream")})
        answer = self._json("block/put", response)
        key = answer.get("Key") if isinstance(answer, dict) else None
        if not isinstance(key, str):
            raise ContentStoreError(f"the IPFS node at {self.api_url} answered block/put without a Key: {answer!r}")
        try:
            return CID.parse(key)
        except InvalidCID as exc:
            raise ContentStoreError(f"the IPFS node at {self.api_url} answered block/put with an unreadable CID {key!r}") from exc

    def get_block(self, cid: CID) -> bytes:
        """Fetch a block from the node and verify it. Raises ``BlockNotFound`` or ``ContentStoreError``."""
        if cid.hash_code != SHA2_256:
            raise InvalidCID(f"{cid} uses multihash 0x{cid.hash_code:x}; only sha2-256 blocks are verified")
        response = self._post("block/get", [("arg", str(cid)), *self._lookup_params()], subject=cid)
        block = response.content
        if not cid.verify_block(block):
            raise ContentStoreError(
                f"the IPFS node at {self.api_url} returned {len(block)} bytes for {cid} that do not hash to it"
            )
        return block

    def has_block(self, cid: CID) -> bool:
        try:
            self._post("block/stat", [("arg", str(cid)), *self._lookup_params()], subject=cid)
        except BlockNotFound:
            return False
        return True

    # -- files ----------------------------------------------------------------------------

    def add_file(self, chunks: bytes | Iterable[bytes]) -> CID:
        """Upload a file with ``ipfs add`` settings matching ours and check the node's root CID."""
        builder = FileDagBuilder(keep_leaves=False)
        if isinstance(chunks, (bytes, bytearray, memoryview)):
            whole = memoryview(chunks)
            pieces: Iterable[bytes] = (bytes(whole[i : i + _UPLOAD_PIECE]) for i in range(0, len(whole), _UPLOAD_PIECE))
        else:
            pieces = chunks
        body, headers = self._multipart(pieces, builder.write)
        params = [
            ("cid-version", "1"),
            ("raw-leaves", "true"),
            ("chunker", f"size-{CHUNK_SIZE}"),
            ("hash", "sha2-256"),
            ("cid-base", "base32"),
            ("pin", "true" if self.pin_files else "false"),
            ("progress", "false"),
            ("wrap-with-directory", "false"),
            ("trickle", "false"),
        ]
        response = self._post("add", params, content=body, headers=headers)
        builder.finish()
        ours = builder.root
        answers = [entry for entry in self._json_lines("add", response) if "Hash" in entry]
        if not answers:
            raise ContentStoreError(f"the IPFS node at {self.api_url} answered add without a Hash: {response.text[:200]!r}")
        try:
            theirs = CID.parse(str(answers[-1]["Hash"]))
        except InvalidCID as exc:
            raise ContentStoreError(
                f"the IPFS node at {self.api_url} answered add with an unreadable CID {answers[-1]['Hash']!r}"
            ) from exc
        if theirs != ours:
            raise ContentStoreError(
                f"the IPFS node at {self.api_url} imported the file as {theirs} but Tally computes {ours}; "
                "the node must use CIDv1, raw leaves, sha2-256, 256 KiB chunks and the balanced layout with 174 links "
                "per node (check Kubo's Import.* settings)"
            )
        return ours

    def cat(self, cid: CID) -> Iterator[bytes]:
        """Stream a file, fetching and verifying each block (so nothing unverified is returned)."""
        return iter_file_bytes(cid, self.get_block)

    def cat_from_node(self, cid: CID) -> bytes:
        """The node's own ``cat`` of a file, unverified: for cross-checking the node, not for reading evidence."""
        params = [("arg", str(cid)), ("timeout", _seconds(self.timeout))]
        if self.offline:
            params.append(("offline", "true"))
        return self._post("cat", params, subject=cid).content

    # -- DAG-CBOR nodes ---------------------------------------------------------------------

    def put_node(self, node: object) -> CID:
        block = dagcbor.encode(node)
        cid = CID.of(DAG_CBOR, block)
        self.put_block(cid, block)
        return cid

    def get_node(self, cid: CID) -> object:
        return decode_node(cid, self.get_block)

    # -- pins and CAR files -------------------------------------------------------------------

    def pin(self, cid: CID, *, recursive: bool = True) -> None:
        """Pin ``cid`` (and, by default, everything under it) on the node."""
        params = [("arg", str(cid)), ("recursive", "true" if recursive else "false"), ("timeout", _seconds(self.timeout))]
        if self.offline:
            params.append(("offline", "true"))
        self._post("pin/add", params, subject=cid)

    def import_car(self, car: Path | Iterable[bytes]) -> list[CID]:
        """``dag/import`` a CAR file (a path or a byte stream) and pin its roots; return the roots."""
        if isinstance(car, Path):

            def read(path: Path = car) -> Iterator[bytes]:
                with open(path, "rb") as handle:
                    while piece := handle.read(_UPLOAD_PIECE):
                        yield piece

            pieces: Iterable[bytes] = read()
        else:
            pieces = car
        body, headers = self._multipart(pieces)
        response = self._post("dag/import", [("pin-roots", "true")], content=body, headers=headers)
        roots: list[CID] = []
        for entry in self._json_lines("dag/import", response):
            root = entry.get("Root")
            if not isinstance(root, dict):
                continue
            if root.get("PinErrorMsg"):
                raise ContentStoreError(f"the IPFS node at {self.api_url} could not pin an imported root: {root['PinErrorMsg']}")
            try:
                roots.append(CID.parse(str(root["Cid"]["/"])))
            except (KeyError, TypeError, InvalidCID) as exc:
                raise ContentStoreError(f"unexpected dag/import answer from {self.api_url}: {entry!r}") from exc
        return roots

    def export_car(self, root: CID, destination: Path) -> None:
        """Stream the node's ``dag/export`` of ``root`` into ``destination`` (check it with ``car.read_car``)."""
        params = [("arg", str(root)), ("timeout", _seconds(self.timeout))]
        if self.offline:
            params.append(("offline", "true"))
        try:
            with self._client.stream("POST", "dag/export", params=tuple(params)) as response:
                self._raise_for("dag/export", response, root)
                with open(destination, "wb") as handle:
                    for piece in response.iter_bytes():
                        handle.write(piece)
        except httpx.TimeoutException as exc:
            raise ContentStoreError(f"the IPFS node at {self.api_url} did not finish dag/export within {self.timeout} s") from exc
        except httpx.HTTPError as exc:
            raise ContentStoreError(f"cannot reach the IPFS node at {self.api_url} (dag/export): {exc}") from exc
