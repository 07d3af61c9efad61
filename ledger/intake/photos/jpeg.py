"""JPEG segments: the one walk over the markers of a JPEG's header that the header reader
(its frame header), the EXIF locator (its ``APP1 Exif`` segment) and the identifying check
(XMP and IPTC segments) share. Raises the internal ``_Malformed``; never reads past the data
it is given.
"""

from __future__ import annotations

from collections.abc import Iterator

from ledger.intake.photos.errors import _Malformed

__all__: list[str] = []

_SOS, _EOI = 0xDA, 0xD9


def _jpeg_segments(
    data: bytes | bytearray,
    *,
    stray: str = "expected a JPEG marker at byte {position}, found 0x{found:02X}",
    bad_length: str = "JPEG segment 0xFF{marker:02X} at byte {position} has length {length}",
) -> Iterator[tuple[int, int, int]]:
    """``(marker, position, length)`` of each segment after ``SOI``, in file order, up to and
    including ``SOS`` or ``EOI`` (given length 0: the header ends there, and so does the walk).

    ``position`` is that of the segment's ``FF``; ``length`` its length field (the segment
    takes ``2 + length`` bytes). Fill bytes and the markers without a length (``TEM``,
    ``RST0``–``RST7``) are stepped over. The walk ends quietly where fewer than 4 bytes are
    left: the caller tells a cut-off file from a head that has not grown enough. A byte that
    is not ``FF`` where a marker must be raises ``_Malformed(stray)``, a length under 2
    ``_Malformed(bad_length)``; both are ``str.format`` templates given ``position`` and
    ``found`` (the byte) or ``marker`` and ``length``.
    """
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise _Malformed(stray.format(position=position, found=data[position]))
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        if marker in (_SOS, _EOI):
            yield marker, position, 0
            return
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if length < 2:
            raise _Malformed(bad_length.format(marker=marker, position=position, length=length))
        yield marker, position, length
        position += 2 + length
