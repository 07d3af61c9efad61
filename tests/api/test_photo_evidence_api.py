"""Issue 11 over HTTP: what is public of a photo, and which uploads are refused (422).

- The uploader's address is shown only to the uploader and to reviewers (the war room,
  admins, and heads of a constituency whose report used the photo); anonymous callers,
  newsrooms and other volunteers get ``uploader: null``.
- The time and exact place stay public: they are evidence, and they are in the bytes.
- A 24-byte "HEIC", a PNG declaring 30,000 x 30,000 pixels and a JPEG carrying its owner's
  name are refused with 422, the reason, and nothing indexed.
"""

from __future__ import annotations

import io
import json

from PIL import Image

from tests.support.api import OTHER_VOLUNTEER, VOLUNTEER, ApiWorld
from tests.support.paths import VECTORS
from tests.support.photos import box, png_header_only

PHOTOS = VECTORS / "photos"


def upload(world: ApiWorld, data: bytes, role: str = "volunteer", content_type: str = "image/jpeg") -> object:
    return world.client.post("/v1/photos", content=data, headers={**world.headers(role), "Content-Type": content_type})


def test_the_uploader_is_shown_only_to_the_uploader_and_to_reviewers(world: ApiWorld) -> None:
    data = (PHOTOS / "jpeg_exif_gps.jpg").read_bytes()
    expected = json.loads((PHOTOS / "expected.json").read_text())["jpeg_exif_gps.jpg"]
    mine = upload(world, data)
    assert mine.status_code == 201 and mine.json()["uploader"] == VOLUNTEER  # type: ignore[attr-defined]
    cid = mine.json()["cid"]  # type: ignore[attr-defined]
    # the same bytes from another volunteer: 200 with the first upload's row, but not its uploader
    again = upload(world, data, "other_volunteer")
    assert again.status_code == 200 and again.json()["uploader"] is None  # type: ignore[attr-defined]
    seen = {
        role: world.client.get(f"/v1/photos/{cid}", headers=world.headers(role)).json()
        for role in ("anonymous", "newsroom", "auditor", "other_volunteer", "volunteer", "constituency_head", "war_room", "admin")
    }
    for role, view in seen.items():
        # a head sees it only once a report of their constituency uses it (below)
        shown = role in ("volunteer", "war_room", "admin")
        assert view["uploader"] == (VOLUNTEER if shown else None), role
        assert VOLUNTEER.lower() not in json.dumps(view).lower() or shown, role
        assert OTHER_VOLUNTEER.lower() not in json.dumps(view).lower(), role
        # time and exact place are evidence: public, as they are in the bytes themselves
        assert view["gps"] == expected["gps"] and view["taken_at"] == expected["taken_at"], role
        assert (view["width"], view["height"]) == (64, 48), role


def test_an_empty_24_byte_heic_is_refused(world: ApiWorld) -> None:
    data = box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic")
    assert len(data) == 24
    answer = upload(world, data, content_type="image/heic")
    assert answer.status_code == 422, answer.text  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert body["error"] == "malformed_photo" and body["errors"][0]["path"] == ["body"]
    assert "24 bytes, too few to be a photo" in body["errors"][0]["message"]


def test_a_decompression_bomb_is_refused_from_its_header(world: ApiWorld) -> None:
    bomb = png_header_only(30_000, 30_000)
    for pieces in ([bomb], [bomb[:50], bomb[50:]]):  # read whole, and streamed (chunked)
        answer = world.client.post(
            "/v1/photos",
            content=iter(pieces) if len(pieces) > 1 else bomb,
            headers={**world.headers("volunteer"), "Content-Type": "image/png"},
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == "photo_too_many_pixels"
        assert "30000 x 30000 pixels" in answer.json()["errors"][0]["message"]


def test_a_photo_naming_its_owner_is_refused_with_the_tag(world: ApiWorld) -> None:
    exif = Image.Exif()
    exif[0x0110] = "iPhone 13"
    exif[0x8769] = {0x9003: "2023:05:14 17:41:07", 0xA430: "Somchai Jaidee", 0xA431: "F17XK2ABCDEF"}
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 20, 30)).save(buffer, "JPEG", exif=exif.tobytes())
    answer = upload(world, buffer.getvalue())
    assert answer.status_code == 422  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert body["error"] == "identifying_metadata"
    message = body["errors"][0]["message"]
    assert "CameraOwnerName (0xA430)" in message and "BodySerialNumber (0xA431)" in message
    assert "the app must strip" in message


def test_a_head_sees_the_uploader_only_of_photos_used_in_their_constituency(world: ApiWorld) -> None:
    """The rule of the unit review: a head judges the reports of their own constituency."""
    from tests.support.factories import VOLUNTEER_KEY, tally_json
    from wallets.tally_client import sign_tally

    data = (PHOTOS / "jpeg_exif_gps.jpg").read_bytes()
    cid = upload(world, data).json()["cid"]  # type: ignore[attr-defined]
    election = world.state.ledger_app.election
    tally = {**tally_json(election, "BKK_1-0001"), "photos": {"tally_board": cid, "form_5_18": cid}}
    assert (
        world.client.post(
            "/v1/tallies", json=sign_tally(tally, VOLUNTEER_KEY, election), headers=world.headers("volunteer")
        ).status_code
        == 201
    )
    _, here = world.state.access.create_principal(
        role="constituency_head", name="head of BKK_1", scope={"constituencies": ["BKK_1"]}
    )
    _, elsewhere = world.state.access.create_principal(
        role="constituency_head", name="head of CMI_1", scope={"constituencies": ["CMI_1"]}
    )

    def seen(token: str) -> object:
        return world.client.get(f"/v1/photos/{cid}", headers={"Authorization": f"Bearer {token}"}).json()["uploader"]  # type: ignore[no-any-return]

    assert seen(here) == VOLUNTEER
    assert seen(elsewhere) is None
