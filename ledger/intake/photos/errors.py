"""The errors of photo intake, all ``LedgerError`` and ``ValueError``; each says what was
wrong and what would be right. The API maps them to HTTP in ``api/errors.py``.

::

    LedgerError
    ├── UnsupportedPhotoType   not a JPEG, PNG or HEIC/HEIF file (decided from its first bytes)
    ├── PhotoTooLarge          more than ``max_bytes``; reading stopped at the piece that passed it
    ├── MalformedPhoto         starts like a photo, but its header does not parse, or too small
    ├── PhotoTooManyPixels     the header declares too many pixels (a decompression bomb)
    ├── IdentifyingMetadata    EXIF, XMP or IPTC naming a person or a device
    └── InvalidCoordinates     a (latitude, longitude) pair out of range (``gps_distance_km``)

``_Malformed`` is internal: a container or EXIF structure that cannot be read. The header
reader turns it into :class:`MalformedPhoto`; the EXIF reader into ``exif_error``.
"""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = [
    "IdentifyingMetadata",
    "InvalidCoordinates",
    "MalformedPhoto",
    "PhotoTooLarge",
    "PhotoTooManyPixels",
    "UnsupportedPhotoType",
]

_ACCEPTED_TEXT = (
    "accepted are JPEG (starts FF D8 FF), PNG (starts 89 50 4E 47 0D 0A 1A 0A) and HEIC/HEIF "
    "(ISOBMFF 'ftyp' brand heic, heix, heim, heis, hevc, mif1 or msf1), recognised by their first bytes, "
    "whatever the file is called"
)


class UnsupportedPhotoType(LedgerError, ValueError):
    """The upload is not a JPEG, PNG or HEIC/HEIF file. ``detected`` says what it looks like."""

    def __init__(self, detected: str):
        self.detected = detected
        super().__init__(f"unsupported photo type: the upload is {detected}; {_ACCEPTED_TEXT}")


class PhotoTooLarge(LedgerError, ValueError):
    """The upload passed ``max_bytes``; reading stopped at ``bytes_read``."""

    def __init__(self, *, max_bytes: int, bytes_read: int):
        self.max_bytes = max_bytes
        self.bytes_read = bytes_read
        super().__init__(
            f"the photo is larger than the limit of {max_bytes} bytes ({_human_size(max_bytes)}); "
            f"reading stopped after {bytes_read} bytes"
        )


class MalformedPhoto(LedgerError, ValueError):
    """The upload starts like a JPEG, PNG or HEIC file but its content does not parse as one
    (no frame header, no ``IHDR``, no ``meta`` box), or it is too small to be a photo."""

    path = ("body",)


class PhotoTooManyPixels(LedgerError, ValueError):
    """The image header declares more pixels than allowed (a decompression bomb, or a scan
    far larger than any phone photo); nothing was decoded."""

    path = ("body",)

    def __init__(self, *, width: int, height: int, max_pixels: int, max_side: int):
        self.width, self.height = width, height
        super().__init__(
            f"the image declares {width} x {height} pixels ({width * height:,}); photos may have at most "
            f"{max_pixels:,} pixels and {max_side:,} on a side: send the phone camera's own photo"
        )


class IdentifyingMetadata(LedgerError, ValueError):
    """The photo carries metadata that identifies a person or a device (``tags``)."""

    path = ("body",)

    def __init__(self, tags: list[str]):
        self.tags = tags
        super().__init__(
            f"the photo carries identifying metadata: {', '.join(tags)}. Its time (DateTimeOriginal), place (GPS) "
            "and orientation are evidence and are kept, but who took it is not public: the app must strip these "
            "tags before uploading"
        )


class InvalidCoordinates(LedgerError, ValueError):
    """A (latitude, longitude) pair is not finite or out of range."""


class _Malformed(Exception):
    """Internal: EXIF data (or the container around it) cannot be read. Never escapes."""


def _human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} B"
