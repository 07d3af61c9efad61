"""Test helpers and fixtures, moved out of the test module that first needed them."""

from __future__ import annotations

import random
import struct

from PIL import Image


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
