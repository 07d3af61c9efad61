"""What intake returns about a stored photo: :class:`PhotoInfo`, whose :meth:`PhotoInfo.as_json`
is the versioned format ``tally-photo-info-v1`` (kept byte for byte: it is stored and served)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.core.cid import CID

__all__ = ["PHOTO_INFO_FORMAT", "PhotoInfo"]

PHOTO_INFO_FORMAT = "tally-photo-info-v1"
"""The ``format`` of :meth:`PhotoInfo.as_json`."""


@dataclass(frozen=True)
class PhotoInfo:
    """A stored photo: its CID, size, type and the EXIF read from it.

    ``taken_at`` and ``gps`` repeat ``exif["taken_at"]`` and ``exif["gps"]`` for convenience.
    ``exif_error`` explains an empty ``exif`` when the EXIF data was there but unreadable.
    ``width`` and ``height`` are what the header declares (None when a HEIF file has no
    ``ispe`` property); ``perceptual_hash`` is :func:`perceptual_hash` of the image, None
    when it could not be computed (HEIC: this Pillow has no HEIF decoder).
    """

    cid: CID
    size: int
    media_type: str
    taken_at: str | None
    gps: dict[str, float] | None = field(hash=False)
    exif: dict[str, object] = field(hash=False)
    exif_error: str | None = None
    width: int | None = None
    height: int | None = None
    perceptual_hash: str | None = None

    def as_json(self) -> dict[str, object]:
        """A fresh JSON-ready dict, format ``tally-photo-info-v1`` (contains floats: not for DAG-CBOR)."""
        return {
            "format": PHOTO_INFO_FORMAT,
            "cid": str(self.cid),
            "size": self.size,
            "media_type": self.media_type,
            "taken_at": self.taken_at,
            "gps": dict(self.gps) if self.gps is not None else None,
            "exif": _copy_json(self.exif),
            "exif_error": self.exif_error,
        }


def _copy_json(value: object) -> object:
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    return value
