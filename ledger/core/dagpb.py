"""dag-pb, the IPLD codec (0x70) of UnixFS's internal nodes: encode and decode, strictly.

CONSENSUS-CRITICAL. The root CID of every file with more than one chunk is the hash of a
dag-pb block (``ledger.core.unixfs`` builds them); a different byte changes the CID.

A node is its links (field 2, each a ``PBLink``), then its Data (field 1), in this order,
which is the dag-pb spec's canonical order::

    PBNode   for each link:  0x12 <varint len(PBLink)> PBLink
             then:           0x0a <varint len(Data)> Data          (when present)
    PBLink   0x0a <varint len(cid)> <binary CID>                   Hash
             0x12 <varint len(name)> <UTF-8 name>                  Name  (when present)
             0x18 <varint Tsize>                                   Tsize (when present)

:func:`decode_pbnode` refuses anything :func:`encode_pbnode` would not produce byte for
byte, with an :class:`ledger.core.errors.InvalidEncoding` naming the offset.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.core.cid import CID, encode_varint
from ledger.core.errors import InvalidCID, InvalidEncoding
from ledger.core.protobuf import read_bytes, read_varint

__all__ = ["PBLink", "PBNode", "decode_pbnode", "encode_pbnode", "pbnode_links"]


@dataclass(frozen=True, slots=True)
class PBLink:
    """A dag-pb link. ``name`` and ``tsize`` are ``None`` when the field is absent."""

    hash: CID
    name: str | None = ""
    tsize: int | None = None


@dataclass(frozen=True, slots=True)
class PBNode:
    """A dag-pb node. ``data`` is ``None`` when the Data field is absent (not the same as ``b""``)."""

    links: tuple[PBLink, ...] = ()
    data: bytes | None = None


def _encode_pblink(link: PBLink) -> bytes:
    cid_bytes = link.hash.bytes
    out = bytearray(b"\x0a")
    out += encode_varint(len(cid_bytes))
    out += cid_bytes
    if link.name is not None:
        name = link.name.encode("utf-8")
        out += b"\x12"
        out += encode_varint(len(name))
        out += name
    if link.tsize is not None:
        if link.tsize < 0:
            raise InvalidEncoding(f"Tsize must be non-negative, got {link.tsize}")
        out += b"\x18"
        out += encode_varint(link.tsize)
    return bytes(out)


def encode_pbnode(node: PBNode) -> bytes:
    """Serialize a dag-pb node: every link (field 2) in order, then Data (field 1) if present."""
    out = bytearray()
    for link in node.links:
        encoded = _encode_pblink(link)
        out += b"\x12"
        out += encode_varint(len(encoded))
        out += encoded
    if node.data is not None:
        out += b"\x0a"
        out += encode_varint(len(node.data))
        out += node.data
    return bytes(out)


def _decode_pblink(data: bytes, where: str) -> PBLink:
    position = 0
    hash_cid: CID | None = None
    name: str | None = None
    tsize: int | None = None
    last_field = 0
    while position < len(data):
        tag_offset = position
        tag, position = read_varint(data, position, where)
        field, wire = tag >> 3, tag & 7
        if field <= last_field:
            raise InvalidEncoding(f"{where}: PBLink field {field} at offset {tag_offset} is out of order or repeated")
        last_field = field
        if field == 1 and wire == 2:
            raw_cid, position = read_bytes(data, position, where)
            try:
                hash_cid = CID.from_bytes(raw_cid)
            except InvalidCID as exc:
                raise InvalidEncoding(f"{where}: PBLink Hash is not a valid CID: {exc}") from exc
        elif field == 2 and wire == 2:
            raw_name, position = read_bytes(data, position, where)
            try:
                name = raw_name.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidEncoding(f"{where}: PBLink Name is not valid UTF-8") from exc
        elif field == 3 and wire == 0:
            tsize, position = read_varint(data, position, where)
        else:
            raise InvalidEncoding(
                f"{where}: unexpected PBLink field {field} (wire type {wire}) at offset {tag_offset}; "
                "only Hash (1, bytes), Name (2, string) and Tsize (3, varint) are allowed"
            )
    if hash_cid is None:
        raise InvalidEncoding(f"{where}: PBLink has no Hash")
    return PBLink(hash_cid, name, tsize)


def decode_pbnode(block: bytes | memoryview) -> PBNode:
    """Parse a dag-pb block strictly (the dag-pb spec's rules), so ``encode_pbnode(decode_pbnode(b)) == b``.

    Refused: unknown fields or wire types, Links after Data, a second Data, PBLink fields
    out of order or repeated, a PBLink without Hash, non-minimal varints, truncation.
    """
    data = bytes(block)
    position = 0
    links: list[PBLink] = []
    node_data: bytes | None = None
    while position < len(data):
        tag_offset = position
        tag, position = read_varint(data, position, "dag-pb")
        field, wire = tag >> 3, tag & 7
        if field == 2 and wire == 2:
            if node_data is not None:
                raise InvalidEncoding(f"dag-pb: link at offset {tag_offset} comes after Data; Links must come first")
            raw_link, position = read_bytes(data, position, "dag-pb")
            links.append(_decode_pblink(raw_link, f"dag-pb link {len(links)}"))
        elif field == 1 and wire == 2:
            if node_data is not None:
                raise InvalidEncoding(f"dag-pb: second Data field at offset {tag_offset}")
            node_data, position = read_bytes(data, position, "dag-pb")
        else:
            raise InvalidEncoding(
                f"dag-pb: unexpected field {field} (wire type {wire}) at offset {tag_offset}; "
                "only Links (2, bytes) and Data (1, bytes) are allowed"
            )
    return PBNode(tuple(links), node_data)


def pbnode_links(block: bytes | memoryview) -> list[CID]:
    """The CIDs a dag-pb block links to, in order."""
    return [link.hash for link in decode_pbnode(block).links]
