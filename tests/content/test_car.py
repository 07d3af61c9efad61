"""CAR v1 export and import (ledger.content.car); interop with js-ipfs is in test_kubo_interop.py."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import dag_cbor
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multiformats import CID as ReferenceCID

from ledger.content.car import (
    encode_car_header,
    export_car,
    import_car,
    iter_car_blocks,
    read_car_header,
    write_car,
)
from ledger.content.local import LocalBlockStore
from ledger.core.cid import CID, DAG_CBOR, RAW, encode_varint
from ledger.core.unixfs import CHUNK_SIZE
from ledger.errors import BlockNotFound, InvalidEncoding


def _evidence(store: LocalBlockStore) -> tuple[CID, CID, bytes]:
    photo_bytes = hashlib.shake_128(b"photo").digest(2 * CHUNK_SIZE + 5)
    photo = store.add_file(photo_bytes)
    record = store.put_node({"format": "tally-record-v1", "photo": photo, "votes": {"1": 10, "2": 7}})
    return record, photo, photo_bytes


def _parse_car(data: bytes) -> tuple[object, list[tuple[bytes, bytes]]]:
    """An independent CAR reader: the dag_cbor package for the header, multiformats for CIDs."""
    stream = io.BytesIO(data)

    def varint() -> int | None:
        value, shift = 0, 0
        while True:
            byte = stream.read(1)
            if not byte:
                return None
            value |= (byte[0] & 0x7F) << shift
            if byte[0] < 0x80:
                return value
            shift += 7

    header_length = varint()
    assert header_length is not None
    header = dag_cbor.decode(stream.read(header_length))
    sections = []
    while (length := varint()) is not None:
        section = stream.read(length)
        cid = ReferenceCID.decode(section[:36])
        sections.append((bytes(cid), section[36:]))
    return header, sections


def test_export_layout_matches_an_independent_reader(tmp_path: Path) -> None:
    store = LocalBlockStore(tmp_path / "a")
    record, photo, _ = _evidence(store)
    car = tmp_path / "out.car"
    summary = export_car(store, [record], car)
    header, sections = _parse_car(car.read_bytes())
    assert header == {"roots": [ReferenceCID.decode(str(record))], "version": 1}
    assert [cid for cid, _ in sections][:2] == [record.bytes, photo.bytes]
    assert summary.block_count == len(sections) == 1 + 1 + 3
    assert summary.byte_count == car.stat().st_size
    assert all(CID.from_bytes(cid).verify_block(block) for cid, block in sections)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_header_bytes() -> None:
    root = CID.of(RAW, b"")
    header = encode_car_header([root])
    body = dag_cbor.encode({"roots": [ReferenceCID.decode(str(root))], "version": 1})
    assert header == encode_varint(len(body)) + body
    assert read_car_header(io.BytesIO(header)) == (root,)


def test_round_trip_between_stores_with_several_roots(tmp_path: Path) -> None:
    source = LocalBlockStore(tmp_path / "source")
    record, photo, photo_bytes = _evidence(source)
    other = source.put_node({"photo": photo, "note": "shares the photo"})
    car = tmp_path / "batch.car"
    summary = export_car(source, [record, other], car)
    assert summary.block_count == 6  # the shared photo is written once
    target = LocalBlockStore(tmp_path / "target")
    imported = import_car(target, car)
    assert imported.roots == (record, other) and imported.block_count == 6
    assert target.get_node(record) == source.get_node(record)
    assert b"".join(target.cat(photo)) == photo_bytes


def test_export_with_a_hole_leaves_no_file(tmp_path: Path) -> None:
    store = LocalBlockStore(tmp_path / "s")
    hole = CID.of(RAW, b"missing photo")
    record = store.put_node({"photo": hole})
    car = tmp_path / "x.car"
    with pytest.raises(BlockNotFound, match=str(hole)):
        export_car(store, [record], car)
    assert list(tmp_path.iterdir()) == [tmp_path / "s"]


def test_export_needs_a_root(tmp_path: Path) -> None:
    with pytest.raises(InvalidEncoding, match="at least one root"):
        export_car(LocalBlockStore(tmp_path / "s"), [], tmp_path / "x.car")


# ----------------------------------------------------------------------------------------
# Refusing malformed files, with nothing stored
# ----------------------------------------------------------------------------------------


def _good_car(tmp_path: Path) -> tuple[bytes, CID]:
    store = LocalBlockStore(tmp_path / "good")
    record = store.put_node({"photo": store.add_file(b"tiny photo"), "n": 1})
    car = tmp_path / "good.car"
    export_car(store, [record], car)
    return car.read_bytes(), record


def _section(cid: CID, block: bytes) -> bytes:
    return encode_varint(len(cid.bytes) + len(block)) + cid.bytes + block


def _malformed(good: bytes, root: CID) -> dict[str, tuple[bytes, str]]:
    header = encode_car_header([root])
    body = good[len(header) :]
    raw = CID.of(RAW, b"x")
    dangling = dag_cbor.encode({"l": ReferenceCID.decode(str(raw))})
    version_2 = dag_cbor.encode({"version": 2})
    return {
        "empty file": (b"", "truncated in the length varint of the header"),
        "truncated header": (header[:-3], "truncated in the header"),
        "header not a map": (encode_varint(1) + b"\x01", "must be a map"),
        "version 2": (encode_varint(len(version_2)) + version_2 + body, "CAR v2"),
        "version 3": (encode_varint(len(h := dag_cbor.encode({"roots": [], "version": 3}))) + h, "version 3"),
        "no roots": (encode_varint(len(h := dag_cbor.encode({"roots": [], "version": 1}))) + h, "non-empty list"),
        "extra header key": (
            encode_varint(len(h := dag_cbor.encode({"roots": [ReferenceCID.decode(str(root))], "version": 1, "x": 1}))) + h,
            "exactly 'roots' and 'version'",
        ),
        "truncated section": (good[:-2], "truncated in section"),
        "trailing partial varint": (good + b"\x85", "truncated in the length varint of section"),
        "zero-length section": (good + b"\x00", "has length 0"),
        "huge section": (good + encode_varint(1 << 30), "outside 1.."),
        "bad cid": (good + encode_varint(3) + b"\x02\x55\x12", "valid CID"),
        "corrupt block": (good[:-1] + bytes([good[-1] ^ 1]), "does not hash"),
        "other hash": (good + _section(CID(1, RAW, bytes((0xB2, 0x40, 0x20)) + bytes(32)), b"x"), "only sha2-256"),
        "unknown codec": (good + _section(CID.of(0x0129, b"{}"), b"{}"), "only raw, dag-pb and dag-cbor"),
        "undecodable dag-cbor": (good + _section(CID.of(DAG_CBOR, b"\xff"), b"\xff"), "CAR section"),
        "missing root": (encode_car_header([raw]) + body, "does not contain it"),
        "dangling link": (good + _section(CID.of(DAG_CBOR, dangling), dangling), "neither in the file nor in the store"),
    }


def test_import_refuses_malformed_files_and_stores_nothing(tmp_path: Path) -> None:
    good, root = _good_car(tmp_path)
    for name, (data, message) in _malformed(good, root).items():
        car = tmp_path / "bad.car"
        car.write_bytes(data)
        target = LocalBlockStore(tmp_path / f"target-{name.replace(' ', '-')}")
        with pytest.raises((InvalidEncoding, BlockNotFound), match=message):
            import_car(target, car)
        assert not any(target.root.rglob("*.data")), f"{name}: something was stored"


def test_import_accepts_links_to_blocks_already_in_the_store(tmp_path: Path) -> None:
    target = LocalBlockStore(tmp_path / "t")
    photo = target.add_file(b"already here")
    source = LocalBlockStore(tmp_path / "s")
    record = source.put_node({"photo": photo})
    car = tmp_path / "partial.car"
    with open(car, "wb") as handle:
        write_car(handle, [record], [(record, source.get_block(record))])
    assert import_car(target, car).roots == (record,)
    assert target.get_node(record) == {"photo": photo}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bit_flips_are_refused_or_harmless(tmp_path: Path, data: st.DataObject) -> None:
    good, _ = _good_car(tmp_path)
    position = data.draw(st.integers(0, len(good) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(good)
    flipped[position] ^= 1 << bit
    car = tmp_path / "flipped.car"
    car.write_bytes(bytes(flipped))
    target = LocalBlockStore(tmp_path / f"flip-{position}-{bit}")
    try:
        import_car(target, car)
    except (InvalidEncoding, BlockNotFound):
        assert not any(target.root.rglob("*.data"))
        return
    # accepted: then every stored block is intact (the flip only renamed a block's codec)
    for path in target.root.rglob("*.data"):
        assert path.read_bytes() in good


def test_iter_car_blocks_streams_verified_blocks(tmp_path: Path) -> None:
    good, root = _good_car(tmp_path)
    blocks = list(iter_car_blocks(io.BytesIO(good)))
    assert blocks[0][0] == root
    assert all(cid.verify_block(block) for cid, block in blocks)


def test_streams_work_as_well_as_paths(tmp_path: Path) -> None:
    source = LocalBlockStore(tmp_path / "source")
    record, photo, photo_bytes = _evidence(source)
    buffer = io.BytesIO()
    summary = export_car(source, [record], buffer)
    assert summary.byte_count == len(buffer.getvalue())
    path = tmp_path / "same.car"
    export_car(source, [record], path)
    assert path.read_bytes() == buffer.getvalue()
    target = LocalBlockStore(tmp_path / "target")
    buffer.seek(0)
    imported = import_car(target, buffer)
    assert imported.roots == (record,) and imported.byte_count == summary.byte_count
    assert b"".join(target.cat(photo)) == photo_bytes


def test_import_needs_a_seekable_stream(tmp_path: Path) -> None:
    class Pipe(io.RawIOBase):
        def seekable(self) -> bool:
            return False

    with pytest.raises(InvalidEncoding, match="seekable"):
        import_car(LocalBlockStore(tmp_path / "t"), Pipe())  # type: ignore[arg-type]
