"""Photo intake: stream an upload into the content store, decide its type from its bytes,
and read the time and place the camera recorded in its EXIF.

This package's public surface; import from here. One module per job, in the order a photo
meets them (:func:`ingest_photo` in ``intake`` runs them; its docstring says what happens
when, and what is stored at each point):

=============== ==========================================================================
``sniff``        the type from the first bytes (JPEG, PNG, HEIC; everything else by name)
``header``       the image header parses, and its size in pixels (bombs refused unread)
``containers``   where the EXIF lies: JPEG ``APP1``, PNG ``eXIf``, HEIF ``Exif`` item
``isobmff``      the box walk of HEIF files, shared by ``header`` and ``containers``
``jpeg``         the segment walk of JPEG files, shared by ``header`` and ``containers``
``tiff``         the bounds-checked IFD reader EXIF data is made of
``fields``       the EXIF fields read (make, model, time, GPS) and their JSON form
``identifying``  tags naming a person or a device, which make a photo refused
``exif``         the tap that copies the EXIF out of a stream; :func:`read_exif`
``perceptual``   the dHash, its bands and distances, to find one photo sent twice
``geo``          great-circle distances between photo locations
``info``         :class:`PhotoInfo`, format ``tally-photo-info-v1``
``limits``       how much is read, held and allowed at each step
``errors``       the errors, drawn as a tree
=============== ==========================================================================

:meth:`PhotoInfo.as_json` is format ``tally-photo-info-v1``. Tests: ``tests/intake/photos/``,
with real JPEG, PNG and HEIC files in ``tests/vectors/photos/`` (and the script that made them).
"""

from __future__ import annotations

from ledger.intake.photos.errors import (
    IdentifyingMetadata,
    InvalidCoordinates,
    MalformedPhoto,
    PhotoTooLarge,
    PhotoTooManyPixels,
    UnsupportedPhotoType,
)
from ledger.intake.photos.exif import ExifReading, read_exif, taken_at_of
from ledger.intake.photos.geo import EARTH_MEAN_RADIUS_KM, gps_distance_km
from ledger.intake.photos.header import PhotoHeader, read_header
from ledger.intake.photos.identifying import IDENTIFYING_EXIF_TAGS
from ledger.intake.photos.info import PHOTO_INFO_FORMAT, PhotoInfo
from ledger.intake.photos.intake import ingest_photo
from ledger.intake.photos.limits import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SIDE,
    HEAD_BYTES,
    HEADER_BYTES,
    HEIF_HEAD_BYTES,
    MAX_EXIF_BYTES,
    MIN_PHOTO_BYTES,
    MIN_PHOTO_SIDE,
    SNIFF_BYTES,
)
from ledger.intake.photos.perceptual import hamming_distance, hash_bands, perceptual_hash
from ledger.intake.photos.sniff import ACCEPTED_MEDIA_TYPES, detect_media_type

__all__ = [
    "ACCEPTED_MEDIA_TYPES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SIDE",
    "EARTH_MEAN_RADIUS_KM",
    "HEADER_BYTES",
    "HEAD_BYTES",
    "HEIF_HEAD_BYTES",
    "IDENTIFYING_EXIF_TAGS",
    "MAX_EXIF_BYTES",
    "MIN_PHOTO_BYTES",
    "MIN_PHOTO_SIDE",
    "PHOTO_INFO_FORMAT",
    "SNIFF_BYTES",
    "ExifReading",
    "IdentifyingMetadata",
    "InvalidCoordinates",
    "MalformedPhoto",
    "PhotoHeader",
    "PhotoInfo",
    "PhotoTooLarge",
    "PhotoTooManyPixels",
    "UnsupportedPhotoType",
    "detect_media_type",
    "gps_distance_km",
    "hamming_distance",
    "hash_bands",
    "ingest_photo",
    "perceptual_hash",
    "read_exif",
    "read_header",
    "taken_at_of",
]
