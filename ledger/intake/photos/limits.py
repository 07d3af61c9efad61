"""How much of a photo is read, held and allowed: the sizes every stage of intake works within.

They bound the memory an upload costs whatever its size (see ``ledger.intake.photos.intake``),
and the defaults of the pixel limits (``TALLY_MAX_PHOTO_PIXELS``, ``TALLY_MAX_PHOTO_SIDE``).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SIDE",
    "HEADER_BYTES",
    "HEAD_BYTES",
    "HEIF_HEAD_BYTES",
    "MAX_EXIF_BYTES",
    "MIN_PHOTO_BYTES",
    "MIN_PHOTO_SIDE",
    "PERCEPTUAL_HASH_MAX_BYTES",
    "PERCEPTUAL_HASH_MAX_DECODED_PIXELS",
    "SNIFF_BYTES",
]

SNIFF_BYTES = 4096
"""Bytes read before the type is decided (an ISOBMFF ``ftyp`` box longer than this is refused)."""


HEADER_BYTES = 1024 * 1024
"""The image header (JPEG frame header, PNG ``IHDR``, HEIF ``meta`` box) must end within this."""


HEAD_BYTES = 256 * 1024
"""Head kept from a JPEG or PNG to find its EXIF."""


HEIF_HEAD_BYTES = 1024 * 1024
"""Head kept from a HEIC file; its ``meta`` box must end within it."""


MAX_EXIF_BYTES = 1024 * 1024
"""Largest EXIF payload copied out of the stream; a larger one is reported in ``exif_error``."""


MIN_PHOTO_BYTES = 256
"""Smaller uploads cannot be a photo of a tally board (a valid 1-pixel PNG has 67 bytes)."""


MIN_PHOTO_SIDE = 16
"""An image narrower or lower than this many pixels is not a photo of a tally board."""


DEFAULT_MAX_PIXELS = 60_000_000
"""Default of ``TALLY_MAX_PHOTO_PIXELS``: a 48-megapixel phone photo passes, a bomb does not."""


DEFAULT_MAX_SIDE = 20_000
"""Default of ``TALLY_MAX_PHOTO_SIDE``: the longest side allowed, in pixels."""


PERCEPTUAL_HASH_MAX_BYTES = 16 * 1024 * 1024
"""A streamed photo up to this size is read back from the store once to compute its perceptual hash."""


PERCEPTUAL_HASH_MAX_DECODED_PIXELS = 4_000_000
"""Images other than JPEG (which decodes at 1/8 scale) are hashed only up to this many
pixels: a PNG of a few KiB may declare millions of flat pixels, and decoding it whole costs
the server 4 bytes and some CPU for each (phones send JPEG or HEIC)."""
