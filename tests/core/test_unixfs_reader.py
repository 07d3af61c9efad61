"""Reading a UnixFS file back (ledger/core/unixfs_reader.py): every recorded size is checked."""

from __future__ import annotations

import pytest

from ledger.core.cid import CID, DAG_PB, RAW
from ledger.core.dagpb import PBLink, PBNode, encode_pbnode
from ledger.core.unixfs_data import encode_unixfs_file_data
from ledger.core.unixfs_reader import iter_file_bytes
from ledger.errors import InvalidEncoding


def _node(links: list[tuple[CID, int]], data: bytes) -> tuple[CID, bytes]:
    block = encode_pbnode(PBNode(tuple(PBLink(cid, "", size) for cid, size in links), data))
    return CID.of(DAG_PB, block), block


def test_iter_file_bytes_checks_every_size() -> None:
    leaf = b"abc"
    leaf_cid = CID.of(RAW, leaf)
    store = {leaf_cid.bytes: leaf}

    def get(cid: CID) -> bytes:
        return store[cid.bytes]

    def make(links: list[tuple[CID, int]], data: bytes) -> CID:
        cid, block = _node(links, data)
        store[cid.bytes] = block
        return cid

    good = make([(leaf_cid, 3)], encode_unixfs_file_data(3, [3]))
    assert b"".join(iter_file_bytes(good, get)) == b"abc"
    # inline data (a dag-pb leaf, as CIDv0 imports make) is read too
    inline = make([], b"\x08\x02\x12\x03xyz\x18\x03")
    assert b"".join(iter_file_bytes(inline, get)) == b"xyz"
    cases = {
        "parent records 4": make([(leaf_cid, 3)], encode_unixfs_file_data(4, [4])),
        "but its data and blocksizes add up": make([(leaf_cid, 3)], encode_unixfs_file_data(9, [3])),
        "1 links but 2 blocksizes": make([(leaf_cid, 3)], encode_unixfs_file_data(6, [3, 3])),
        "not a file": make([], b"\x08\x01"),
    }
    no_data = encode_pbnode(PBNode((PBLink(leaf_cid, "", 3),), None))
    cases["no Data field"] = CID.of(DAG_PB, no_data)
    store[cases["no Data field"].bytes] = no_data
    for message, cid in cases.items():
        with pytest.raises(InvalidEncoding, match=message):
            b"".join(iter_file_bytes(cid, get))
    # a child claiming the wrong size inside a good-looking parent
    middle = make([(leaf_cid, 3)], encode_unixfs_file_data(3, [3]))
    liar = make([(middle, 100)], encode_unixfs_file_data(5, [5]))
    with pytest.raises(InvalidEncoding, match="holds 3 bytes but its parent records 5"):
        b"".join(iter_file_bytes(liar, get))
    with pytest.raises(InvalidEncoding, match="dag-cbor"):
        list(iter_file_bytes(CID.of(0x71, b"\xa0"), get))
