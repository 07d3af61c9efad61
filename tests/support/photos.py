"""Photo test helpers: the committed fixture files, and test-side writers of the formats
photo intake reads (TIFF/EXIF, JPEG APP1 segments, ISOBMFF/HEIF boxes), small enough to read,
so that malformed and unusual layouts can be made on purpose.

Fixtures in tests/vectors/photos/ are real files made by make_fixtures.py there (Pillow, and
pillow-heif/libheif for the HEIC); expected.json holds the values the generator wrote into
them.
"""

from __future__ import annotations

import io
import json
import random
import struct
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

from PIL import Image

from ledger.content.local import LocalBlockStore
from ledger.core.cid import CID
from tests.support.paths import VECTORS


def box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def png_header_only(width: int, height: int) -> bytes:
    """A tiny valid PNG declaring ``width`` x ``height`` (a decompression bomb when large)."""
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(bytes(width + 1) * min(height, 64), 9)  # a few rows of zeros; a bomb stops early
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + bytes(300) + chunk(b"IEND", b"")


def scene(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """A photo-like picture: a gradient with random boxes and lines (a board with numbers)."""
    rng = random.Random(seed)
    from PIL import ImageDraw

    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.rectangle(
            (x, y, x + rng.randrange(20, 200), y + rng.randrange(20, 150)), fill=tuple(rng.randrange(256) for _ in range(3))
        )
    return image


PHOTO_VECTORS = VECTORS / "photos"
EXPECTED: dict[str, dict[str, object]] = json.loads((PHOTO_VECTORS / "expected.json").read_text())
LIMIT = 20 * 1024 * 1024


def fixture_bytes(name: str) -> bytes:
    return (PHOTO_VECTORS / name).read_bytes()


JPEG_HEAD = fixture_bytes("jpeg_no_exif.jpg")
"""A real JPEG (64 x 48), for uploads that only need a valid header before their filler."""


def stored_blocks(store: LocalBlockStore) -> list[Path]:
    return sorted(store.root.rglob("*.data"))


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = [0, *sorted(cuts), len(data)]
    return [data[start:end] for start, end in zip(points, points[1:])]


def cat(store: LocalBlockStore, cid: CID) -> bytes:
    return b"".join(store.cat(cid))


# --------------------------------------------------------------------------------------
# Test-side writers: TIFF (EXIF), JPEG APP1, ISOBMFF (HEIF)
# --------------------------------------------------------------------------------------

Entry = tuple[int, int, int, bytes]  # tag, TIFF type, count, value bytes


def ascii_entry(tag: int, text: str) -> Entry:
    raw = text.encode() + b"\x00"
    return (tag, 2, len(raw), raw)


def rational_entry(tag: int, *values: tuple[int, int], order: str = "<", signed: bool = False) -> Entry:
    code = "i" if signed else "I"
    raw = b"".join(struct.pack(order + code * 2, numerator, denominator) for numerator, denominator in values)
    return (tag, 10 if signed else 5, len(values), raw)


def byte_entry(tag: int, value: int) -> Entry:
    return (tag, 1, 1, bytes([value]))


def build_tiff(
    ifd0: list[Entry], exif_ifd: list[Entry] | None = None, gps_ifd: list[Entry] | None = None, order: str = "<"
) -> bytes:
    """TIFF-structured EXIF: IFD0, then the Exif and GPS IFDs, then the values over 4 bytes."""
    ifds = [list(ifd0)]
    pointers = []
    for tag, sub in ((0x8769, exif_ifd), (0x8825, gps_ifd)):
        if sub is not None:
            pointers.append((tag, len(ifds)))
            ifds.append(list(sub))
    starts: list[int] = []
    position = 8
    for ifd in ifds:
        extra = len(pointers) if not starts else 0
        starts.append(position)
        position += 2 + 12 * (len(ifd) + extra) + 4
    for tag, index in pointers:
        ifds[0].append((tag, 4, 1, struct.pack(order + "I", starts[index])))
    data_area = bytearray()
    out = bytearray((b"II" if order == "<" else b"MM") + struct.pack(order + "HI", 42, 8))
    for ifd in ifds:
        out += struct.pack(order + "H", len(ifd))
        for tag, kind, count, value in sorted(ifd):
            if len(value) <= 4:
                field = value.ljust(4, b"\x00")
            else:
                field = struct.pack(order + "I", position + len(data_area))
                data_area += value + b"\x00" * (len(value) % 2)
            out += struct.pack(order + "HHI", tag, kind, count) + field
        out += b"\x00\x00\x00\x00"
    return bytes(out + data_area)


def good_tiff(order: str = "<") -> bytes:
    """Make, DateTimeOriginal+Offset, GPS 33°51'35.9"S 151°12'40"W, 3 m below sea level."""
    return build_tiff(
        [ascii_entry(0x010F, "TestCam"), ascii_entry(0x0110, "Model T")],
        [ascii_entry(0x9003, "2023:05:14 18:02:59"), ascii_entry(0x9011, "-03:30")],
        [
            ascii_entry(1, "S"),
            rational_entry(2, (33, 1), (51, 1), (359, 10), order=order),
            ascii_entry(3, "W"),
            rational_entry(4, (151, 1), (12, 1), (40, 1), order=order),
            byte_entry(5, 1),
            rational_entry(6, (3, 1), order=order),
        ],
        order=order,
    )


GOOD_TIFF_EXIF = {
    "make": "TestCam",
    "model": "Model T",
    "date_time_original": "2023:05:14 18:02:59",
    "offset_time_original": "-03:30",
    "taken_at": "2023-05-14T18:02:59-03:30",
    "taken_at_offset": "-03:30",
    "gps": {
        "lat": float(-(33 + Fraction(51, 60) + Fraction(359, 36000))),
        "lon": float(-(151 + Fraction(12, 60) + Fraction(40, 3600))),
        "alt": -3.0,
    },
}


def jpeg_with_exif(tiff: bytes, *, before: bytes = b"") -> bytes:
    """A real JPEG (the no-EXIF fixture) with an APP1 Exif segment holding ``tiff`` after ``before``."""
    body = fixture_bytes("jpeg_no_exif.jpg")
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xd8" + before + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + body[2:]


def app_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def full_box(kind: bytes, version: int, payload: bytes) -> bytes:
    return box(kind, bytes((version, 0, 0, 0)) + payload)


def build_heic(
    tiff: bytes | None,
    *,
    filler: int = 2000,
    exif_at: str = "end",
    iloc_version: int = 1,
    decoy: bytes | None = None,
    meta_last: bool = False,
    brands: tuple[bytes, ...] = (b"heic", b"mif1", b"heic"),
    ispe: tuple[int, int] | None = None,
) -> bytes:
    """A HEIF file: item 1 a (fake) hvc1 image, item 2 its Exif (cdsc → 1), optional item 3 a decoy Exif.

    ``exif_at``: "end" (in mdat after the image), "start" (before it), "split" (two extents,
    one on each side of the image) or "idat" (inside the meta box).
    """
    image = bytes(range(256)) * (filler // 256) + bytes(filler % 256)
    exif = b"\x00\x00\x00\x06Exif\x00\x00" + tiff if tiff is not None else b""
    decoy_payload = b"\x00\x00\x00\x00" + decoy if decoy is not None else b""
    ftyp = box(b"ftyp", brands[0] + b"\x00\x00\x00\x00" + b"".join(brands[1:]))

    def meta(extents: dict[int, list[tuple[int, int]]], methods: dict[int, int]) -> bytes:
        infe = [full_box(b"infe", 2, (1).to_bytes(2, "big") + b"\x00\x00hvc1\x00")]
        if decoy is not None:  # listed first on purpose: the reader must prefer the cdsc one
            infe.append(full_box(b"infe", 2, (3).to_bytes(2, "big") + b"\x00\x00Exif\x00"))
        if tiff is not None:
            infe.append(full_box(b"infe", 2, (2).to_bytes(2, "big") + b"\x00\x00Exif\x00"))
        iinf = full_box(b"iinf", 0, len(infe).to_bytes(2, "big") + b"".join(infe))
        width = 2 if iloc_version < 2 else 4
        entries = b""
        for item, item_extents in sorted(extents.items()):
            entries += item.to_bytes(width, "big")
            if iloc_version in (1, 2):
                entries += methods.get(item, 0).to_bytes(2, "big")
            entries += b"\x00\x00" + len(item_extents).to_bytes(2, "big")  # data_reference_index, extent_count
            for offset, length in item_extents:
                entries += offset.to_bytes(4, "big") + length.to_bytes(4, "big")
        iloc = full_box(b"iloc", iloc_version, bytes((0x44, 0x00)) + len(extents).to_bytes(width, "big") + entries)
        children = [
            full_box(b"hdlr", 0, b"\x00" * 4 + b"pict" + b"\x00" * 13),
            full_box(b"pitm", 0, (1).to_bytes(2, "big")),
            iinf,
            full_box(b"iref", 0, box(b"cdsc", (2).to_bytes(2, "big") + (1).to_bytes(2, "big") + (1).to_bytes(2, "big"))),
            iloc,
        ]
        if exif_at == "idat":
            children.append(box(b"idat", exif))
        if ispe is not None:  # image spatial extents of item 1 (no ipma: the reader takes the largest)
            extents_box = full_box(b"ispe", 0, ispe[0].to_bytes(4, "big") + ispe[1].to_bytes(4, "big"))
            children.append(box(b"iprp", box(b"ipco", extents_box)))
        return full_box(b"meta", 0, b"".join(children))

    def arrange(mdat_data_start: int) -> tuple[dict[int, list[tuple[int, int]]], dict[int, int], bytes]:
        extents: dict[int, list[tuple[int, int]]] = {}
        methods: dict[int, int] = {}
        if exif_at == "start":
            mdat = exif + decoy_payload + image
            extents[2] = [(mdat_data_start, len(exif))]
            extents[3] = [(mdat_data_start + len(exif), len(decoy_payload))]
            extents[1] = [(mdat_data_start + len(exif) + len(decoy_payload), len(image))]
        elif exif_at == "split":
            half = len(exif) // 2
            mdat = exif[:half] + image + exif[half:] + decoy_payload
            extents[2] = [(mdat_data_start, half), (mdat_data_start + half + len(image), len(exif) - half)]
            extents[1] = [(mdat_data_start + half, len(image))]
            extents[3] = [(mdat_data_start + len(exif) + len(image), len(decoy_payload))]
        elif exif_at == "idat":
            mdat = image + decoy_payload
            extents[1] = [(mdat_data_start, len(image))]
            extents[2] = [(0, len(exif))]
            methods[2] = 1
            extents[3] = [(mdat_data_start + len(image), len(decoy_payload))]
        else:
            mdat = image + exif + decoy_payload
            extents[1] = [(mdat_data_start, len(image))]
            extents[2] = [(mdat_data_start + len(image), len(exif))]
            extents[3] = [(mdat_data_start + len(image) + len(exif), len(decoy_payload))]
        if tiff is None:
            del extents[2]
        if decoy is None:
            del extents[3]
        return extents, methods, box(b"mdat", mdat)

    if meta_last:
        extents, methods, mdat = arrange(len(ftyp) + 8)
        return ftyp + mdat + meta(extents, methods)
    meta_size = len(meta(*arrange(0)[:2]))
    extents, methods, mdat = arrange(len(ftyp) + meta_size + 8)
    built = meta(extents, methods)
    assert len(built) == meta_size
    return ftyp + built + mdat


def pillow_jpeg(exif: Image.Exif | None, *, size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, (90, 140, 200))
    if exif is None:
        image.save(buffer, "JPEG", quality=85)
    else:
        image.save(buffer, "JPEG", quality=85, exif=exif.tobytes())
    return buffer.getvalue()
