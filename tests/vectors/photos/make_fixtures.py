"""Write the photo fixtures of tests/intake/photos/, and expected.json beside them.

    python tests/vectors/photos/make_fixtures.py

Needs Pillow; the HEIC file also needs ``pillow-heif`` (libheif with the x265 encoder), which
is not a project dependency: run this from a throwaway environment that has it, e.g.
``python -m venv /tmp/heifgen && /tmp/heifgen/bin/pip install pillow-heif==1.8.1``.
The expected values are the inputs below, never values read back with ledger code.
Committed output: Pillow 13.0.0 (libjpeg-turbo 3.2.0, zlib-ng 2.3.3), pillow-heif 1.8.1
(libheif 1.23.6, x265 4.3). Regenerating with other versions may change the bytes (and the
sha256 in expected.json), never the metadata.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from pathlib import Path

from PIL import Image, ImageDraw, TiffImagePlugin

HERE = Path(__file__).resolve().parent

# Bangkok, near the Democracy Monument: 13°45'23.4" N 100°30'6.48" E = 13.7565, 100.5018.
BANGKOK_GPS = {
    1: "N",
    2: (13.0, 45.0, 23.4),
    3: "E",
    4: (100.0, 30.0, 6.48),
    5: b"\x00",
    6: TiffImagePlugin.IFDRational(25, 2),  # 12.5 m above sea level
    7: (2.0, 41.0, 7.0),
    29: "2023:05:14",  # 02:41:07 UTC
}
# Chiang Mai, 18°47'24" N 98°59'6" E = 18.79, 98.985; no altitude, no GPS time.
CHIANG_MAI_GPS = {1: "N", 2: (18.0, 47.0, 24.0), 3: "E", 4: (98.0, 59.0, 6.0)}


def picture(width: int = 64, height: int = 48) -> Image.Image:
    """A small deterministic picture: a gradient with a dark 'tally board' rectangle."""
    image = Image.new("RGB", (width, height))
    image.putdata([(4 * x % 256, 5 * y % 256, (x * y) % 256) for y in range(height) for x in range(width)])
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 8, width - 9, height - 9), outline=(255, 255, 255), fill=(20, 60, 30))
    draw.line((12, 20, width - 12, 20), fill=(250, 250, 250))
    return image


def exif_bytes(*, make: str, model: str, original: str, offset: str | None, gps: Mapping[int, object] | None) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = make
    exif[0x0110] = model
    exif[0x0132] = original  # DateTime
    exif_ifd: dict[int, object] = {0x9003: original}
    if offset is not None:
        exif_ifd[0x9011] = offset
    exif[0x8769] = exif_ifd
    if gps is not None:
        exif[0x8825] = gps
    return exif.tobytes()


def encode(image: Image.Image, kind: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def main() -> None:
    files: dict[str, tuple[bytes, dict[str, object]]] = {}

    files["jpeg_exif_gps.jpg"] = (
        encode(
            picture(),
            "JPEG",
            quality=80,
            exif=exif_bytes(make="Canon", model="EOS R6", original="2023:05:14 09:41:07", offset="+07:00", gps=BANGKOK_GPS),
        ),
        {
            "media_type": "image/jpeg",
            "taken_at": "2023-05-14T09:41:07+07:00",
            "gps": {"lat": 13.7565, "lon": 100.5018, "alt": 12.5},
            "exif": {
                "make": "Canon",
                "model": "EOS R6",
                "date_time_original": "2023:05:14 09:41:07",
                "offset_time_original": "+07:00",
                "taken_at": "2023-05-14T09:41:07+07:00",
                "taken_at_offset": "+07:00",
                "gps": {"lat": 13.7565, "lon": 100.5018, "alt": 12.5},
                "gps_time_utc": "2023-05-14T02:41:07Z",
            },
        },
    )
    files["jpeg_no_exif.jpg"] = (
        encode(picture(), "JPEG", quality=80),
        {"media_type": "image/jpeg", "taken_at": None, "gps": None, "exif": {}},
    )
    files["png_no_exif.png"] = (
        encode(picture(), "PNG"),
        {"media_type": "image/png", "taken_at": None, "gps": None, "exif": {}},
    )
    files["png_exif.png"] = (
        encode(
            picture(),
            "PNG",
            exif=exif_bytes(make="Google", model="Pixel 7", original="2023:05:14 17:05:00", offset=None, gps=None),
        ),
        {
            "media_type": "image/png",
            "taken_at": "2023-05-14T17:05:00",
            "gps": None,
            "exif": {
                "make": "Google",
                "model": "Pixel 7",
                "date_time_original": "2023:05:14 17:05:00",
                "taken_at": "2023-05-14T17:05:00",
                "taken_at_offset": "unknown",
            },
        },
    )
    try:
        import pillow_heif
    except ImportError:
        print("pillow-heif is not installed: keeping the committed heic_exif_gps.heic")
    else:
        pillow_heif.register_heif_opener()
        files["heic_exif_gps.heic"] = (
            encode(
                picture(),
                "HEIF",
                quality=60,
                exif=exif_bytes(
                    make="Apple", model="iPhone 13", original="2023:05:14 16:20:31", offset="+07:00", gps=CHIANG_MAI_GPS
                ),
            ),
            {
                "media_type": "image/heic",
                "taken_at": "2023-05-14T16:20:31+07:00",
                "gps": {"lat": 18.79, "lon": 98.985},
                "exif": {
                    "make": "Apple",
                    "model": "iPhone 13",
                    "date_time_original": "2023:05:14 16:20:31",
                    "offset_time_original": "+07:00",
                    "taken_at": "2023-05-14T16:20:31+07:00",
                    "taken_at_offset": "+07:00",
                    "gps": {"lat": 18.79, "lon": 98.985},
                },
            },
        )

    expected_path = HERE / "expected.json"
    expected = json.loads(expected_path.read_text()) if expected_path.exists() else {}
    for name, (data, metadata) in files.items():
        (HERE / name).write_bytes(data)
        expected[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), **metadata}
        print(f"{name}: {len(data)} bytes")
    expected_path.write_text(json.dumps(dict(sorted(expected.items())), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
