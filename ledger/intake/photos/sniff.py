"""The type of an upload, decided from its first bytes alone (a file name is never an input).

- ``image/jpeg``: ``FF D8 FF``;
- ``image/png``: ``89 50 4E 47 0D 0A 1A 0A``;
- ``image/heic``: an ISOBMFF ``ftyp`` box whose major or compatible brands include an HEVC
  brand (``heic heix heim heis hevc hevx hevm hevs``) or, failing that, the generic HEIF
  brands ``mif1``/``msf1`` without an AVIF brand. AVIF (``avif``/``avis``), MP4 and
  QuickTime files are refused by name.

Anything else raises :class:`UnsupportedPhotoType` naming what it looks like (a PDF, a ZIP
archive, a text file starting '…').
"""

from __future__ import annotations

from ledger.intake.photos.errors import UnsupportedPhotoType
from ledger.intake.photos.limits import SNIFF_BYTES

__all__ = ["ACCEPTED_MEDIA_TYPES", "detect_media_type"]

ACCEPTED_MEDIA_TYPES = ("image/jpeg", "image/png", "image/heic")


_JPEG_MAGIC = b"\xff\xd8\xff"


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


_HEVC_BRANDS = frozenset({"heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs"})


_GENERIC_HEIF_BRANDS = frozenset({"mif1", "msf1", "mif2"})


_AVIF_BRANDS = frozenset({"avif", "avis", "avio"})


def detect_media_type(first_bytes: bytes) -> str:
    """The media type of a file from its first ``SNIFF_BYTES`` bytes (or all of it, if shorter).

    Returns one of ``ACCEPTED_MEDIA_TYPES``; raises :class:`UnsupportedPhotoType` saying
    what the bytes look like otherwise.
    """
    if not first_bytes:
        raise UnsupportedPhotoType("an empty file")
    if first_bytes.startswith(_JPEG_MAGIC):
        return "image/jpeg"
    if first_bytes.startswith(_PNG_MAGIC):
        return "image/png"
    if first_bytes[4:8] == b"ftyp":
        major, compatible = _ftyp_brands(first_bytes)
        brands = {major, *compatible}
        if brands & _HEVC_BRANDS or (brands & _GENERIC_HEIF_BRANDS and not brands & _AVIF_BRANDS):
            return "image/heic"
        listed = ", ".join(dict.fromkeys([major, *compatible]))
        if brands & _AVIF_BRANDS:
            raise UnsupportedPhotoType(f"an AVIF image (ISOBMFF brands {listed})")
        if brands & {"qt  "}:
            raise UnsupportedPhotoType(f"a QuickTime movie (ISOBMFF brands {listed})")
        raise UnsupportedPhotoType(f"an ISOBMFF file that is not HEIF, probably a video (brands {listed})")
    raise UnsupportedPhotoType(_describe(first_bytes))


def _ftyp_brands(data: bytes) -> tuple[str, list[str]]:
    size = int.from_bytes(data[0:4], "big")
    header = 8
    if size == 1:
        if len(data) < 16:
            raise UnsupportedPhotoType(f"a truncated ISOBMFF file ({len(data)} bytes)")
        size, header = int.from_bytes(data[8:16], "big"), 16
    if size < header + 8 or (size - header - 8) % 4 or size > SNIFF_BYTES:
        raise UnsupportedPhotoType(f"an ISOBMFF file with a malformed 'ftyp' box (size {size})")
    if len(data) < size:
        raise UnsupportedPhotoType(f"a truncated ISOBMFF file (its 'ftyp' box has {size} bytes, the file {len(data)})")

    def brand(at: int) -> str:
        return data[at : at + 4].decode("latin-1")

    return brand(header), [brand(at) for at in range(header + 8, size, 4)]


_MAGIC_NAMES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image or camera raw file"),
    (b"MM\x00*", "a TIFF image or camera raw file"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "a JPEG XL image"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"\xff\xd8", "a damaged JPEG (FF D8 not followed by FF)"),
    (b"PK\x03\x04", "a ZIP archive (or an office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x00\x00\x01\x00", "a Windows icon"),
)


def _describe(data: bytes) -> str:
    """A short human description of bytes that are not an accepted photo."""
    for magic, name in _MAGIC_NAMES:
        if data.startswith(magic):
            return name
    if data[0:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "a WebP image"
    if data[0:4] == b"RIFF":
        return "a RIFF file (AVI or WAV)"
    text = _as_text(data[:512])
    if text is not None:
        lowered = text.lstrip("\ufeff \t\r\n").lower()
        if lowered.startswith(("<!doctype html", "<html")):
            return "an HTML document"
        if lowered.startswith(("<?xml", "<svg")):
            return "an XML or SVG document"
        snippet = text[:24] + ("…" if len(text) > 24 else "")
        return f"a text file (starting {snippet!r})"
    if data.startswith(b"BM") and len(data) >= 14:
        return "a BMP image"
    return "data of an unknown kind (first bytes " + " ".join(f"{byte:02X}" for byte in data[:8]) + ")"


def _as_text(sample: bytes) -> str | None:
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:  # not just a character cut at the end of the sample
            return None
        text = sample[: exc.start].decode("utf-8")
    if not text or not all(character.isprintable() or character in "\t\r\n\f" for character in text):
        return None
    return text
