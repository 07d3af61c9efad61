"""The API end to end: sign-in, photos, tallies, records, proofs, batches, content,
aggregates, the feed, rate limits and error answers (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from api.main import create_app
from api.state import AppState
from ledger.content.car import iter_car_blocks
from ledger.core.cid import CID, RAW
from ledger.core.proof import check_proof_document
from ledger.settings import Settings
from tests.support.api import OTHER_VOLUNTEER, VOLUNTEER, ApiWorld, TestClient, make_settings, sign_in
from tests.support.factories import OTHER_KEY, VOLUNTEER_KEY, signed_tally, stand_in_photos, tally_json
from tests.support.paths import VECTORS

PHOTOS = VECTORS / "photos"


def errors_by_path(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {".".join(str(p) for p in e["path"]): e["message"] for e in response.json()["errors"]}


# -- sign-in ---------------------------------------------------------------------------


def test_a_volunteer_signs_in_with_personal_sign(world: ApiWorld) -> None:
    me = world.client.get("/v1/auth/whoami", headers=world.headers("volunteer")).json()
    assert me == {"role": "volunteer", "name": VOLUNTEER, "address": VOLUNTEER, "principal_id": None, "scope": None}
    assert world.client.get("/v1/auth/whoami").json()["role"] == "anonymous"


def test_sign_in_refuses_wrong_signers_reused_nonces_and_unregistered_addresses(world: ApiWorld) -> None:
    client = world.client
    challenge = client.post("/v1/auth/challenge", json={"address": VOLUNTEER}).json()
    assert "Nonce: " + challenge["nonce"] in challenge["message"] and VOLUNTEER in challenge["message"]
    wrong = Account.sign_message(encode_defunct(text=challenge["message"]), private_key=OTHER_KEY).signature
    body = {"address": VOLUNTEER, "nonce": challenge["nonce"], "signature": "0x" + bytes(wrong).hex()}
    answer = client.post("/v1/auth/session", json=body)
    assert answer.status_code == 401 and OTHER_VOLUNTEER in answer.json()["errors"][0]["message"]
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    right = Account.sign_message(encode_defunct(text=challenge["message"]), private_key=VOLUNTEER_KEY).signature
    body = {"address": VOLUNTEER, "nonce": challenge["nonce"], "signature": "0x" + bytes(right).hex()}
    assert client.post("/v1/auth/session", json=body).status_code == 201
    again = client.post("/v1/auth/session", json=body)
    assert again.status_code == 401 and "already used" in again.json()["errors"][0]["message"]
    stranger = bytes.fromhex("07" * 32)
    with pytest.raises(AssertionError, match="403"):
        sign_in(client, stranger)


def test_a_revoked_volunteer_loses_their_session(world: ApiWorld) -> None:
    admin = world.headers("admin")
    assert world.client.delete(f"/v1/admin/volunteers/{VOLUNTEER}", headers=admin).status_code == 200
    answer = world.client.get("/v1/auth/whoami", headers=world.headers("volunteer"))
    assert answer.status_code == 401 and "no longer" in answer.json()["errors"][0]["message"]
    assert world.submit().status_code == 401


def test_tampered_and_expired_sessions_are_refused(world: ApiWorld, api_settings: Settings) -> None:
    token = world.tokens["volunteer"]
    assert token is not None
    prefix, address, generation, expires, mac = token.split(".")
    forged = f"{prefix}.{address}.{generation}.{int(expires) + 3600}.{mac}"
    answer = world.client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401 and "wrong signature" in answer.json()["errors"][0]["message"]
    world.state.access.sessions.lifetime_seconds = -1
    expired, _ = world.state.access.sessions.issue(VOLUNTEER)
    answer = world.client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {expired}"})
    assert answer.status_code == 401 and "expired" in answer.json()["errors"][0]["message"]
    assert world.client.get("/v1/auth/whoami", headers={"Authorization": "Basic abc"}).status_code == 401


# -- admin -----------------------------------------------------------------------------


def test_admin_makes_keys_that_are_shown_once_and_stored_hashed(world: ApiWorld) -> None:
    admin = world.headers("admin")
    made = world.client.post(
        "/v1/admin/principals",
        json={"role": "constituency_head", "name": "Head of BKK 1", "scope": {"constituencies": ["BKK_1"]}},
        headers=admin,
    )
    assert made.status_code == 201
    token = made.json()["token"]
    assert token.startswith("tly_") and made.json()["scope"] == {"constituencies": ["BKK_1"]}
    listed = world.client.get("/v1/admin/principals", headers=admin).json()
    assert all("token" not in p for p in listed) and any(p["token_hint"] == token[:10] for p in listed)
    from ledger.store import Principal

    with world.state.ledger_app.database.session() as session:
        assert token not in {row.token_hash for row in session.query(Principal)}
    me = world.client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["role"] == "constituency_head" and me["scope"] == {"constituencies": ["BKK_1"]}
    revoked = world.client.delete(f"/v1/admin/principals/{made.json()['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert world.client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_admin_input_is_checked(world: ApiWorld) -> None:
    admin = world.headers("admin")
    volunteer_key = world.client.post("/v1/admin/principals", json={"role": "volunteer", "name": "x"}, headers=admin)
    assert volunteer_key.status_code == 422 and errors_by_path(volunteer_key).keys() == {"role"}
    bad_scope = world.client.post(
        "/v1/admin/principals",
        json={"role": "constituency_head", "name": "x", "scope": {"constituencies": ["ZZZ_9"]}},
        headers=admin,
    )
    assert bad_scope.status_code == 422 and "ZZZ_9" in bad_scope.json()["errors"][0]["message"]
    again = world.client.post("/v1/admin/volunteers", json={"address": VOLUNTEER}, headers=admin)
    assert again.status_code == 200
    assert world.client.post("/v1/admin/volunteers", json={"address": "0x" + "ab" * 20}, headers=admin).status_code == 201
    assert world.client.delete("/v1/admin/principals/999999", headers=admin).status_code == 404


def test_an_organisation_registered_twice_is_a_conflict_not_a_refusal(world: ApiWorld) -> None:
    admin = world.headers("admin")
    body = {"id": "civic-twice", "name": "Civic", "kind": "civil_society"}
    assert world.client.post("/v1/organisations", json=body, headers=admin).status_code == 201
    again = world.client.post("/v1/organisations", json=body, headers=admin)
    assert again.status_code == 409, again.text
    assert again.json()["error"] == "already_exists" and "exists already" in again.text


# -- tallies ---------------------------------------------------------------------------


def test_a_tally_gets_a_receipt_and_a_retry_gets_the_same_one(world: ApiWorld) -> None:
    first = world.submit()
    assert first.status_code == 201, first.text
    receipt = first.json()
    assert receipt["format"] == "tally-receipt-v1" and first.headers["Location"] == f"/v1/records/{receipt['record_cid']}"
    retry = world.submit()
    assert retry.status_code == 200 and retry.json() == receipt
    conflict = world.submit(cast=401)
    assert conflict.status_code == 409 and conflict.json()["error"] == "conflicting_submission"
    assert "different content" in conflict.json()["errors"][0]["message"]


def test_an_invalid_tally_lists_every_error_with_its_path(world: ApiWorld) -> None:
    election = world.state.ledger_app.election
    tally = tally_json(election)
    tally["party_list"]["votes"]["999"] = 5
    tally["constituency"]["invalid"] = -1
    tally["extra"] = 1
    tally["submitter"] = VOLUNTEER
    tally["signature"] = "0x" + "00" * 65
    answer = world.client.post("/v1/tallies", json=tally, headers=world.headers("volunteer"))
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_tally"
    paths = errors_by_path(answer)
    assert {"party_list.votes.999", "constituency.invalid", "extra"} <= paths.keys()
    assert "no party number 999" in paths["party_list.votes.999"]


def test_a_volunteer_may_submit_only_their_own_records(world: ApiWorld) -> None:
    election = world.state.ledger_app.election
    theirs = signed_tally(election, key=OTHER_KEY)
    answer = world.client.post("/v1/tallies", json=theirs, headers=world.headers("volunteer"))
    assert answer.status_code == 403
    message = answer.json()["errors"][0]["message"]
    assert OTHER_VOLUNTEER in message and VOLUNTEER in message and "own key" in message
    assert world.client.post("/v1/tallies", json=theirs, headers=world.headers("other_volunteer")).status_code == 201


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 422),
        (b"[1, 2]", "application/json", 422),
        (b'{"polling_unit": 1e999}', "application/json", 422),
        (b'{"registered_voters": 123456789012345678901234567890}', "application/json", 422),
        (b"[" * 5000 + b"]" * 5000, "application/json", 422),
        (b"\xff\xfe", "application/json", 422),
        (b"a=1", "application/x-www-form-urlencoded", 415),
        (b"", "application/json", 422),
    ],
)
def test_malformed_bodies_are_client_errors(world: ApiWorld, body: bytes, content_type: str, status: int) -> None:
    answer = world.client.post("/v1/tallies", content=body, headers={**world.headers("volunteer"), "Content-Type": content_type})
    assert answer.status_code == status, answer.text
    assert answer.json()["errors"]


def test_oversized_bodies_are_refused_before_reading(world: ApiWorld) -> None:
    headers = {**world.headers("volunteer"), "Content-Type": "application/json"}
    answer = world.client.post("/v1/tallies", content=b" " * ((1 << 20) + 1), headers=headers)
    assert answer.status_code == 413 and answer.json()["error"] == "body_too_large"


# -- photos ----------------------------------------------------------------------------


def test_a_photo_is_stored_with_its_exif_and_the_same_bytes_give_the_same_cid(world: ApiWorld) -> None:
    data = (PHOTOS / "jpeg_exif_gps.jpg").read_bytes()
    expected = json.loads((PHOTOS / "expected.json").read_text())["jpeg_exif_gps.jpg"]
    headers = {**world.headers("volunteer"), "Content-Type": "image/jpeg"}
    first = world.client.post("/v1/photos", content=data, headers=headers)
    assert first.status_code == 201, first.text
    photo = first.json()
    assert photo["media_type"] == "image/jpeg" and photo["size"] == len(data) and photo["uploader"] == VOLUNTEER
    assert photo["gps"]["lat"] == expected["gps"]["lat"] and photo["taken_at"] == expected["taken_at"]
    assert photo["exif"]["make"] == expected["exif"]["make"]
    # The first (with Content-Length, small) was read whole; this one (chunked) streams.
    second = world.client.post("/v1/photos", content=iter([data[:100], data[100:]]), headers=headers)
    assert second.status_code == 200 and second.json() == photo
    assert world.client.get(f"/v1/photos/{photo['cid']}").json() == {**photo, "uploader": None}  # not public
    from ledger.store import Photo

    with world.state.ledger_app.database.session() as session:
        row = session.get(Photo, photo["cid"])
        assert row is not None and row.exif["gps"] == expected["exif"]["gps"]
    raw = world.client.get(f"/v1/content/{photo['cid']}")
    assert raw.status_code == 200 and raw.content == data and raw.headers["content-type"] == "image/jpeg"
    assert world.client.get(f"/v1/content/{photo['cid']}", headers={"If-None-Match": raw.headers["ETag"]}).status_code == 304


def test_photo_limits_and_types(world: ApiWorld, api_state: AppState) -> None:
    headers = {**world.headers("volunteer"), "Content-Type": "application/octet-stream"}
    text = world.client.post("/v1/photos", content=b"hello, this is text", headers=headers)
    assert text.status_code == 415 and text.json()["error"] == "unsupported_photo_type"
    form = world.client.post(
        "/v1/photos", files={"photo": ("a.jpg", b"\xff\xd8\xff" + b"0" * 10)}, headers=world.headers("volunteer")
    )
    assert form.status_code == 415 and "multipart" in form.json()["errors"][0]["message"]
    limit = api_state.settings.max_photo_bytes
    big = (PHOTOS / "jpeg_no_exif.jpg").read_bytes() + b"\0" * limit  # a real header: only the size is wrong
    declared = world.client.post("/v1/photos", content=big, headers=headers)
    assert declared.status_code == 413 and declared.json()["error"] == "photo_too_large"
    streamed = world.client.post("/v1/photos", content=iter([big[:65536], big[65536:]]), headers=headers)  # chunked: no length
    assert streamed.status_code == 413 and streamed.json()["error"] == "photo_too_large"
    assert world.client.post("/v1/photos", content=b"\xff\xd8\xff", headers=world.headers("newsroom")).status_code == 403


# -- reading ---------------------------------------------------------------------------


def test_records_proofs_batches_and_content(world: ApiWorld) -> None:
    receipts = [world.submit(unit_id=unit, submission_id=f"read-{unit}").json() for unit in ("BKK_1-0001", "BKK_1-0002")]
    cid = receipts[0]["record_cid"]
    record = world.client.get(f"/v1/records/{cid}").json()
    assert record["record_cid"] == cid and record["receipt"] == receipts[0] and record["batch_id"] is None
    assert world.client.get("/v1/units/BKK_1-0001/records").json()["records"][0]["record_cid"] == cid
    pending = world.client.get(f"/v1/proofs/{cid}").json()
    assert pending["status"] == "pending" and pending["batch"] is None
    world.state.ledger_app.batcher.seal_due(force=True)
    sealed = world.client.get(f"/v1/proofs/{cid}").json()
    assert sealed["status"] == "sealed" and sealed["anchor"] is None
    assert check_proof_document(sealed).hex() == sealed["batch"]["root"][2:]
    assert [p["status"] for p in world.client.get("/v1/units/BKK_1-0002/proofs").json()["proofs"]] == ["sealed"]
    batches = world.client.get("/v1/batches").json()
    assert [b["id"] for b in batches["batches"]] == [1] and batches["next_offset"] is None
    batch = world.client.get("/v1/batches/1").json()
    assert batch["root"] == sealed["batch"]["root"] and batch["status"] == "sealed"
    dump = world.client.get("/v1/batches/1/oz-dump").json()
    subjects = sorted(v["value"][1] for v in dump["values"])
    assert dump["format"] == "standard-v1" and [s for s in subjects if s.startswith("BKK_1-")] == ["BKK_1-0001", "BKK_1-0002"]
    assert len(subjects) == 2 + len(
        world.client.get("/v1/feed?view=authority", headers=world.headers("newsroom")).json()["items"]
    )
    manifest = world.client.get(f"/v1/content/{batch['manifest_cid']}")
    assert json.loads(manifest.content)["root"] == batch["root"]
    block = world.client.get(f"/v1/content/{cid}")
    assert block.headers["content-type"] == "application/vnd.ipld.dag-cbor" and CID.parse(cid).verify_block(block.content)
    car = world.client.get(f"/v1/content/{cid}?format=car")
    import io

    blocks = list(iter_car_blocks(io.BytesIO(car.content)))
    assert str(blocks[0][0]) == cid and len(blocks) == 3  # the record and its two photos
    assert world.client.get("/v1/batches/2").status_code == 404
    assert world.client.get("/v1/records/not-a-cid").status_code == 422
    assert world.client.get("/v1/records/bafyreiadcveuokiyjkcscbjl6qzaqvbmggxfglvg3r6dgkizzdyauovqa4").status_code == 404
    assert world.client.get("/v1/units/NOPE-0001/records").status_code == 404
    assert world.client.get("/v1/batches/99999999999999999999").status_code == 422


def test_the_election_summary(client: TestClient) -> None:
    election = client.get("/v1/election")
    assert election.status_code == 200
    body = election.json()
    assert body["id"] == "th2566" and len(body["provinces"]) == 77 and len(body["constituencies"]) == 400
    assert body["unit_count"] == 95_099
    assert client.get("/v1/election", headers={"If-None-Match": election.headers["ETag"]}).status_code == 304
    bkk1 = client.get("/v1/election/constituencies/BKK_1").json()
    assert bkk1["first_unit"] == "BKK_1-0001" and bkk1["candidates"][0]["number"] == 1


# -- aggregates ------------------------------------------------------------------------


def test_aggregates_have_etags_and_csv(world: ApiWorld) -> None:
    client = world.client
    empty = client.get("/v1/aggregates/unofficial/national")
    assert empty.status_code == 200 and empty.json()["units_reporting"] == 0
    etag = empty.headers["ETag"]
    assert client.get("/v1/aggregates/unofficial/national", headers={"If-None-Match": etag}).status_code == 304
    world.submit()
    changed = client.get("/v1/aggregates/unofficial/national", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    national = changed.json()
    assert national["view"] == "unofficial" and national["units_reporting"] == 1 and national["computed_at"].endswith("Z")
    assert client.get("/v1/aggregates/certified/national").json()["units_reporting"] == 0
    bkk1 = client.get("/v1/aggregates/unofficial/constituencies/BKK_1").json()
    assert bkk1["units_reporting"] == 1 and bkk1["leader"]["number"] == 1
    assert client.get("/v1/aggregates/unofficial/provinces/BKK").json()["units_reporting"] == 1
    assert len(client.get("/v1/aggregates/unofficial/provinces").json()) == 77
    assert len(client.get("/v1/aggregates/unofficial/constituencies").json()) == 400
    party_list = client.get("/v1/aggregates/unofficial/party-list").json()
    assert party_list["total_votes"] > 0 and party_list["seats"]["format"] == "tally-party-list-allocation-v1"
    house = client.get("/v1/aggregates/unofficial/house").json()
    assert house["seats"] == 500
    for resource, header in (("constituencies", "constituency_id"), ("provinces", "province_id"), ("party-list", "party_number")):
        csv = client.get(f"/v1/aggregates/unofficial/{resource}?format=csv")
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0].startswith(header) and csv.headers["Tally-View"] == "unofficial"
        unchanged = client.get(f"/v1/aggregates/unofficial/{resource}?format=csv", headers={"If-None-Match": csv.headers["ETag"]})
        assert unchanged.status_code == 304
    assert client.get("/v1/aggregates/secret/national").status_code == 422
    assert client.get("/v1/aggregates/unofficial/constituencies/NOPE_1").status_code == 404
    assert client.get("/v1/aggregates/unofficial/provinces/NOPE").status_code == 404
    typo = client.get("/v1/aggregates/unofficial/constituencies?fromat=csv")
    assert typo.status_code == 422 and errors_by_path(typo) == {
        "query.fromat": "unknown query parameter 'fromat'; this endpoint takes format"
    }
    assert client.get("/v1/aggregates/unofficial/house?format=csv").status_code == 422  # the House is no table


# -- feed ------------------------------------------------------------------------------


def test_the_feed_pages_in_order(world: ApiWorld) -> None:
    units = ["BKK_1-0001", "BKK_1-0002", "BKK_1-0003"]
    for unit in units:
        world.submit(unit_id=unit, submission_id=f"feed-{unit}")
    newsroom = world.headers("newsroom")
    page = world.client.get("/v1/feed?limit=2", headers=newsroom).json()
    assert [i["polling_unit"] for i in page["items"]] == units[:2] and page["has_more"]
    rest = world.client.get(f"/v1/feed?after={page['next_cursor']}&limit=2", headers=newsroom).json()
    assert [i["polling_unit"] for i in rest["items"]] == units[2:] and not rest["has_more"]
    end = world.client.get(f"/v1/feed?after={rest['next_cursor']}", headers=newsroom).json()
    assert end == {"items": [], "next_cursor": rest["next_cursor"], "has_more": False}
    assert world.client.get("/v1/feed?limit=0", headers=newsroom).status_code == 422
    assert world.client.get("/v1/feed?after=-1", headers=newsroom).status_code == 422


def _events(text: str) -> list[dict[str, str]]:
    events = []
    for chunk in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in chunk.splitlines() if line and not line.startswith(":") and ": " in line)
        if "data" in fields:
            events.append(fields)
    return events


def test_the_stream_sends_events_then_ends(world: ApiWorld) -> None:
    for unit in ("BKK_1-0001", "BKK_1-0002", "BKK_1-0003"):
        world.submit(unit_id=unit, submission_id=f"sse-{unit}")
    war_room = world.headers("war_room")
    with world.client.stream("GET", "/v1/feed/stream?max_events=2", headers=war_room) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        events = _events(stream.read().decode())
    assert [json.loads(e["data"])["polling_unit"] for e in events] == ["BKK_1-0001", "BKK_1-0002"]
    assert all(e["event"] == "entry" for e in events)
    resumed = world.client.get("/v1/feed/stream?timeout=0.3", headers={**war_room, "Last-Event-ID": events[1]["id"]})
    assert [json.loads(e["data"])["polling_unit"] for e in _events(resumed.text)] == ["BKK_1-0003"]


def test_the_stream_sends_heartbeats_when_quiet(world: ApiWorld) -> None:
    world.state.settings.feed_heartbeat_seconds = 0.1
    world.state.settings.feed_poll_seconds = 0.05
    quiet = world.client.get("/v1/feed/stream?timeout=0.35", headers=world.headers("admin"))
    assert quiet.status_code == 200 and quiet.text.count(": heartbeat") >= 2


# -- rate limits -----------------------------------------------------------------------


def test_rate_limits_answer_429_with_retry_after(tmp_path: Path, database_url: str) -> None:
    # With the refresh loop on, aggregate reads take the fast path (api/routes/hot.py): both paths share the buckets.
    settings = make_settings(
        tmp_path / "limited",
        database_url,
        rate_limit_enabled=True,
        rate_limit_anonymous=1.0,
        rate_limit_burst_seconds=3.0,
        rate_limit_newsroom=100.0,
        api_refresh_aggregates=True,
        aggregates_refresh_seconds=60.0,
    )
    state = AppState.open(settings)
    _, newsroom = state.access.create_principal(role="newsroom", name="Thai PBS")
    try:
        with TestClient(create_app(app_state=state)) as client:
            statuses = [client.get("/v1/aggregates/unofficial/national").status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            limited = client.get("/v1/health")
            assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
            assert limited.json()["error"] == "rate_limited" and "1 requests per second" in limited.json()["errors"][0]["message"]
            keyed = [
                client.get("/v1/aggregates/unofficial/national", headers={"Authorization": f"Bearer {newsroom}"}).status_code
                for _ in range(20)
            ]
            assert set(keyed) == {200}  # a newsroom key has its own, larger bucket
    finally:
        state.close()


def test_the_aggregates_fast_path_answers_exactly_as_the_routes(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(
        tmp_path / "fast", database_url, api_refresh_aggregates=True, aggregates_refresh_seconds=60.0, access_cache_seconds=60.0
    )
    state = AppState.open(settings)
    state.ledger_app.content.put_block(CID.of(RAW, b"board"), b"board")
    state.ledger_app.content.put_block(CID.of(RAW, b"form"), b"form")
    stand_in_photos(state.ledger_app.ledger)
    state.ledger.submit_tally(signed_tally(state.ledger_app.election))
    _, newsroom = state.access.create_principal(role="newsroom", name="newsroom")
    urls = [
        f"/v1/aggregates/{view}/{resource}"
        for view in ("unofficial", "certified")
        for resource in (
            "national",
            "provinces",
            "provinces/BKK",
            "constituencies",
            "constituencies/BKK_1",
            "party-list",
            "house",
            "provinces?format=csv",
            "constituencies?format=csv",
            "party-list?format=csv",
            "party-list?format=json",
        )
    ]
    callers = [{}, {"Authorization": f"Bearer {newsroom}"}, {"Authorization": "Bearer tly_nope"}, {"Authorization": "Basic x"}]
    try:
        with TestClient(create_app(app_state=state, fast_paths=False)) as routes, TestClient(create_app(app_state=state)) as fast:
            state.aggregates.refresh()
            expected = {(url, i): routes.get(url, headers=headers) for url in urls for i, headers in enumerate(callers)}

            def no_routes(*_args: object, **_kwargs: object) -> None:
                raise AssertionError("the fast path let this through")

            monkeypatch.setattr("api.routes.aggregates.serve", no_routes)
            for (url, i), answer in expected.items():
                got = fast.get(url, headers=callers[i])
                assert (got.status_code, got.content) == (answer.status_code, answer.content), url
                for header in ("content-type", "etag", "cache-control", "tally-view", "www-authenticate", "content-disposition"):
                    assert got.headers.get(header) == answer.headers.get(header), (url, header)
                if answer.status_code == 200:
                    again = fast.get(url, headers={**callers[i], "If-None-Match": answer.headers["ETag"]})
                    assert again.status_code == 304 and again.headers["ETag"] == answer.headers["ETag"]
    finally:
        state.close()


def test_the_submissions_fast_path_answers_exactly_as_the_routes(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ledger served by the routes only and with the fast path: each request gets the
    same status, error body and headers. (The two send their own submission ids, so
    receipts and conflicts, which name them, are compared by status and kind.)"""
    state = AppState.open(make_settings(tmp_path / "data", database_url, access_cache_seconds=60.0))
    state.ledger_app.content.put_block(CID.of(RAW, b"board"), b"board")
    state.ledger_app.content.put_block(CID.of(RAW, b"form"), b"form")
    stand_in_photos(state.ledger_app.ledger)
    state.access.register_volunteer(address=VOLUNTEER, name="volunteer 42")
    election = state.ledger_app.election
    _, newsroom = state.access.create_principal(role="newsroom", name="newsroom")
    big = b'{"pad": "' + b"x" * (1 << 20) + b'"}'
    jpeg = (PHOTOS / "jpeg_exif_gps.jpg").read_bytes()

    def cases(tag: str) -> list[tuple[str, dict[str, object]]]:
        invalid = tally_json(election, submission_id=f"invalid-{tag}")
        invalid["constituency"]["invalid"] = -1
        mine = f"mine-{tag}-01"
        return [
            ("first", {"json": signed_tally(election, submission_id=mine)}),
            ("retry", {"json": signed_tally(election, submission_id=mine)}),
            ("conflict", {"json": signed_tally(election, submission_id=mine, cast=401)}),
            ("invalid", {"json": invalid}),
            ("someone else's", {"json": signed_tally(election, key=OTHER_KEY, submission_id=f"theirs-{tag}")}),
            ("anonymous", {"json": signed_tally(election), "auth": None}),
            ("not bearer", {"json": signed_tally(election), "auth": "Basic eA=="}),
            ("bad session", {"json": signed_tally(election), "auth": "Bearer tvs1.nope"}),
            ("newsroom", {"json": signed_tally(election), "auth": f"Bearer {newsroom}"}),
            ("not JSON type", {"content": b"a=1", "type": "application/x-www-form-urlencoded"}),
            ("broken JSON", {"content": b"{not json", "type": "application/json"}),
            ("a list", {"content": b"[1, 2]", "type": "application/json"}),
            ("chunked, too big", {"content": iter([big[:1000], big[1000:]]), "type": "application/json"}),
            ("photo", {"photo": jpeg + tag.encode(), "type": "image/jpeg"}),
            ("photo again", {"photo": jpeg + tag.encode(), "type": "image/jpeg"}),
            ("photo, not a photo", {"photo": b"hello, this is text", "type": "application/octet-stream"}),
            ("photo, multipart", {"photo": b"--x\r\n", "type": "multipart/form-data; boundary=x"}),
            ("photo, empty", {"photo": b"", "type": "image/jpeg"}),
            ("photo, anonymous", {"photo": jpeg, "type": "image/jpeg", "auth": None}),
            ("photo, newsroom", {"photo": jpeg, "type": "image/jpeg", "auth": f"Bearer {newsroom}"}),
        ]

    async def no_route(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the fast path let this through")

    def no_photo_route(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the fast path let this photo through")

    answers: dict[str, list[object]] = {}
    try:
        for tag, fast_paths in (("routes", False), ("fast", True)):
            with TestClient(create_app(app_state=state, fast_paths=fast_paths), raise_server_exceptions=False) as client:
                session = sign_in(client, VOLUNTEER_KEY)
                for token in (session, newsroom):  # the first call of a key looks it up, on the routes' path
                    assert client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 200
                if fast_paths:
                    monkeypatch.setattr("api.routes.submissions.read_json", no_route)
                    monkeypatch.setattr("api.routes.submissions.check_photo_type", no_photo_route)
                answers[tag] = []
                for label, case in cases(tag):
                    auth = case.get("auth", f"Bearer {session}")
                    headers = {"Authorization": str(auth)} if auth else {}
                    if "type" in case:
                        headers["Content-Type"] = str(case["type"])
                    if "photo" in case:
                        answer = client.post("/v1/photos", content=case["photo"], headers=headers)  # type: ignore[arg-type]
                    else:
                        answer = client.post(
                            "/v1/tallies",
                            json=case.get("json"),
                            content=case.get("content"),  # type: ignore[arg-type]
                            headers=headers,
                        )
                    body = answer.json()
                    if answer.status_code in (200, 201) and "photo" in case:
                        body = {k: v for k, v in body.items() if k not in ("cid", "size", "uploaded_at")}
                    elif answer.status_code in (200, 201, 409):
                        body = body.get("error")
                    kept = {h: answer.headers.get(h) for h in ("content-type", "www-authenticate", "retry-after")}
                    answers[tag].append((label, answer.status_code, body, kept, "location" in answer.headers))
                monkeypatch.undo()
                unknown = client.post(
                    "/v1/tallies?x=1", json=signed_tally(election), headers={"Authorization": f"Bearer {session}"}
                )
                assert unknown.status_code == 422 and unknown.json()["errors"][0]["path"] == ["query", "x"]
                streamed = client.post(
                    "/v1/photos",
                    content=iter([jpeg[:100], jpeg[100:] + b"s" + tag.encode()]),
                    headers={"Authorization": f"Bearer {session}", "Content-Type": "image/jpeg"},
                )
                assert streamed.status_code == 201  # no Content-Length: the route streams it, in both
    finally:
        state.close()
    assert answers["fast"] == answers["routes"]
    assert [status for _, status, *_ in answers["fast"]] == [
        201,
        200,
        409,
        422,
        403,
        401,
        401,
        401,
        403,
        415,
        422,
        422,
        413,
        201,
        200,
        415,
        415,
        415,
        401,
        403,
    ]


def test_a_members_session_keeps_its_role_when_served_from_the_cache(tmp_path: Path) -> None:
    """Regression: with the access cache on, a war-room member's second request was
    treated as a plain volunteer's (403)."""
    from tests.support.photo_reports import key
    from tests.support.review import address

    settings = make_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'tally.db'}", access_cache_seconds=30.0)
    state = AppState.open(settings)
    state.review.register_member(address=address("war-room"), level=3, name="war room", organisation_id=None)
    with TestClient(create_app(app_state=state)) as client:
        headers = {"Authorization": f"Bearer {sign_in(client, key('war-room'))}"}
        for _ in range(3):
            answer = client.get("/v1/review/queue", headers=headers)
            assert answer.status_code == 200, answer.text
        assert client.get("/v1/auth/whoami", headers=headers).json()["role"] == "war_room"
    state.close()
