"""Perceptual hashing: a 64-bit difference hash (dHash) that stays close for a re-saved,
resized or slightly cropped copy of the same photo, and the bands that index it, so that
screening finds one photo sent for several polling units.
"""

from __future__ import annotations

import io

from ledger.intake.photos.limits import PERCEPTUAL_HASH_MAX_DECODED_PIXELS

__all__ = ["hamming_distance", "hash_bands", "perceptual_hash"]

_MIN_INFORMATIVE_BITS = 32
"""A hash where fewer of the 64 neighbour pairs differ by 2 grey levels or more is mostly ties:
such an image (a flat card with a little text) has too little structure to compare, and
unrelated ones would look alike."""


def perceptual_hash(data: bytes) -> str | None:
    """The 64-bit difference hash (dHash) of an image, as 16 hex digits, or None.

    The image is turned upright (EXIF orientation), made grey, shrunk to 9 x 8 pixels, and
    bit ``8 * row + column`` is 1 where a pixel is brighter than its right neighbour. A
    re-saved, re-compressed, resized or slightly cropped copy gives a hash a few bits away
    (:func:`hamming_distance`); different scenes differ in about half the bits. JPEGs are
    decoded at 1/8 scale (``draft``); other images only up to
    ``PERCEPTUAL_HASH_MAX_DECODED_PIXELS``. None when Pillow cannot decode the image (HEIC
    without a HEIF plug-in) or the image is mostly flat (``_MIN_INFORMATIVE_BITS``).
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "JPEG":
                image.draft("L", (64, 64))
            elif image.width * image.height > PERCEPTUAL_HASH_MAX_DECODED_PIXELS:
                return None
            upright = ImageOps.exif_transpose(image)
            small = upright.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
            pixels = small.tobytes()
    except Exception:  # noqa: BLE001 - no hash is no evidence lost; the photo itself is kept
        return None
    bits = informative = 0
    for row in range(8):
        for column in range(8):
            left, right = pixels[row * 9 + column], pixels[row * 9 + column + 1]
            bits = (bits << 1) | (1 if left > right else 0)
            informative += abs(left - right) >= 2
    return f"{bits:016x}" if informative >= _MIN_INFORMATIVE_BITS else None


def hamming_distance(a: str, b: str) -> int:
    """How many bits differ between two perceptual hashes (16 hex digits each)."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def hash_bands(perceptual: str) -> tuple[int, int, int, int]:
    """The four 16-bit bands of a perceptual hash, most significant first. Two hashes at most
    3 bits apart share at least one band whole (4 bands, 3 differing bits), so an index over
    ``(band, value)`` finds every such near duplicate; farther ones are found when their
    differences happen to fall in fewer than four bands."""
    bits = int(perceptual, 16)
    return (bits >> 48, (bits >> 32) & 0xFFFF, (bits >> 16) & 0xFFFF, bits & 0xFFFF)
