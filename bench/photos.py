"""Unique, valid JPEGs of a given size, made cheaply, for the national night's uploads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = ["PHOTO_ROLES", "PhotoMaker", "check_photo", "com_segment"]

PHOTO_ROLES = (("tally_board", "board"), ("form_5_18", "form"))
"""(the tally's photo link name, the role in the photo's name) of the two photos of a report."""


def com_segment(payload: bytes) -> bytes:
    """A JPEG comment segment (0xFFFE); its length field counts itself, so payload ≤ 65,533 bytes."""
    if len(payload) > 65533:
        raise ValueError("a COM segment holds at most 65,533 bytes")
    return b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload


def _start_of_scan(jpeg: bytes) -> int:
    position = 2
    while jpeg[position + 1] != 0xDA:
        position += 2 + int.from_bytes(jpeg[position + 2 : position + 4], "big")
    return position


class PhotoMaker:
    """Unique, valid JPEGs of about ``size`` bytes, made cheaply.

    One base per role is drawn by ``make_photo`` (EXIF time and GPS; image noise up to
    about 90 % of ``size``); each photo is that base with a COM segment right after SOI
    naming the photo (so every photo has its own CID) and padding to ``size``. Padding
    beyond one segment goes just before SOS, after the EXIF segment, so EXIF stays within
    the head the server reads.
    """

    def __init__(self, size: int, *, taken_at: datetime, location: tuple[float, float]):
        from ledger.cli.simulation import make_photo

        self.size = size
        self._bases: dict[str, tuple[bytes, bytes, bytes]] = {}
        for _, role in PHOTO_ROLES:
            base = make_photo(
                label=f"national bench {role}",
                taken_at=taken_at,
                location=location,
                seed=f"bench-national:{role}",
                size=int(size * 0.9) if size > 4096 else 0,
            )
            sos = _start_of_scan(base)
            self._bases[role] = (base[2:sos], base[sos:], base)

    def photo(self, role: str, name: str) -> bytes:
        headers, scan, base = self._bases[role]
        marker = f"tally-bench-national {name} ".encode()
        needed = self.size - len(base)
        first = marker.ljust(min(65533, max(len(marker), needed - 4)), b".")
        remaining = needed - 4 - len(first)
        extra = []
        while remaining >= 4:
            chunk = min(65533, remaining - 4)
            extra.append(com_segment(bytes(chunk)))
            remaining -= 4 + chunk
        return b"".join((b"\xff\xd8", com_segment(first), headers, *extra, scan))


def check_photo(photo: bytes) -> dict[str, Any]:
    """The photo opens as an image, its type is JPEG by its bytes, and its EXIF still parses."""
    import io

    from PIL import Image

    from ledger.intake.photos import detect_media_type, read_exif

    with Image.open(io.BytesIO(photo)) as image:
        image.load()
    media_type = detect_media_type(photo[:4096])
    reading = read_exif(photo)
    if media_type != "image/jpeg" or reading.error or "taken_at" not in reading.exif or "gps" not in reading.exif:
        raise SystemExit(f"the benchmark's photos are not valid: type {media_type}, EXIF {reading}")
    return dict(reading.exif)
