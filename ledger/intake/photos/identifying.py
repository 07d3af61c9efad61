"""Metadata that identifies a person or a device, which makes a photo refused.

The time (``DateTimeOriginal``), place (GPS) and orientation are evidence and are kept;
who took the photo is not public. Checked twice during intake: in the bytes held before
anything is stored (a JPEG's EXIF, XMP and IPTC segments lie there), and in the EXIF copied
while streaming (a HEIC keeps its EXIF after the image).
"""

from __future__ import annotations

from ledger.intake.photos.containers import _LOCATORS
from ledger.intake.photos.errors import _Malformed
from ledger.intake.photos.jpeg import _EOI, _SOS, _jpeg_segments
from ledger.intake.photos.tiff import _EXIF_IFD, _TYPE_SIZES, _Tiff

__all__ = ["IDENTIFYING_EXIF_TAGS"]

IDENTIFYING_EXIF_TAGS: dict[int, str] = {
    0x013B: "Artist",
    0x8298: "Copyright",
    0x9C9D: "XPAuthor",
    0x927C: "MakerNote",
    0xA430: "CameraOwnerName",
    0xA431: "BodySerialNumber",
    0xA435: "LensSerialNumber",
}
"""EXIF/TIFF tags (IFD0 and the Exif IFD) that identify the person or the device: a photo
carrying any of them (with a non-blank value) is refused. ``Copyright`` is refused because
cameras fill it with the owner's name. Kept: ``DateTimeOriginal``, the GPS IFD,
``Orientation``, ``Make`` and ``Model`` (a phone model is not a person) and
``ImageUniqueID`` (it names the image, not the device or its owner, and helps find copies)."""


_IDENTIFYING_XMP = (
    b"dc:creator",
    b"dc:rights",
    b"xmpRights:Owner",
    b"tiff:Artist",
    b"aux:SerialNumber",
    b"aux:OwnerName",
    b"aux:LensSerialNumber",
    b"exifEX:CameraOwnerName",
    b"exifEX:BodySerialNumber",
    b"exifEX:LensSerialNumber",
    b"photoshop:AuthorsPosition",
    b"photoshop:Credit",
)
"""XMP properties (in a JPEG's XMP ``APP1`` segment) that identify a person or a device."""


def _identifying_tags(tiff: _Tiff) -> list[str]:
    """Identifying tags present with a value, in IFD0 and the Exif IFD ("Artist (0x013B)", …)."""
    ifd0 = tiff.ifd(tiff.first_ifd, "IFD0")
    found = []
    for ifd in (ifd0, tiff.sub_ifd(ifd0, _EXIF_IFD, "Exif IFD")):
        for tag, entry in sorted(ifd.items()):
            name = IDENTIFYING_EXIF_TAGS.get(tag)
            if name is None or entry.number == 0:
                continue
            try:
                raw = tiff._raw(entry, name) if entry.kind in _TYPE_SIZES else b"?"
            except _Malformed:
                raw = b"?"  # a value we cannot read still says the tag is there
            if raw.strip(b"\x00 "):
                found.append(f"{name} (0x{tag:04X})")
    return found


def _identifying_in(container: str, head: bytes, *, complete: bool) -> list[str]:
    """Identifying metadata that lies wholly in ``head``: the EXIF tags, and in a JPEG its XMP
    and IPTC (APP13) segments. What lies beyond the head is checked by the tap."""
    found: list[str] = []
    if container == "jpeg":
        found += _identifying_jpeg_segments(head)
    try:
        location = _LOCATORS[container](head, complete)
        if location is not None and location.extents and all(end <= len(head) for _, end in location.extents):
            payload = b"".join(head[start:end] for start, end in location.extents)
            found += _identifying_tags(_Tiff(location.unwrap(payload)))
    except Exception:  # noqa: BLE001 - unreadable here: the tap reads it again and reports it
        pass
    return list(dict.fromkeys(found))


def _identifying_jpeg_segments(head: bytes) -> list[str]:
    """XMP properties and the IPTC by-line in the segments before ``SOS``, walked as the header
    reader walks them (fill bytes and markers without a length stepped over). The search ends
    where the walk breaks (a stray byte, a length under 2, the end of ``head``)."""
    found: list[str] = []
    try:
        for marker, position, length in _jpeg_segments(head):
            if marker in (_SOS, _EOI):
                break
            payload = head[position + 4 : position + 2 + length]
            if marker == 0xE1 and payload.startswith(b"http://ns.adobe.com/xap/1.0/"):
                found += [f"XMP {name.decode()}" for name in _IDENTIFYING_XMP if name in payload]
            elif marker == 0xED and payload.startswith(b"Photoshop 3.0") and b"\x1c\x02\x50" in payload:
                found.append("IPTC By-line (2:80)")
    except _Malformed:
        pass  # what was found before the break still counts
    return found
