"""Issue 11, the access holes: session tokens parsed strictly, who may assign areas, who may
relay a volunteer's tally, what the public unit review shows, sign-out, and plain-text names.

Each test here failed on the code before its fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.main import create_app
from api.state import AppState
from ledger.core.cid import CID, RAW
from ledger.errors import Forbidden
from ledger.people.access import LEGACY_SESSION_PREFIX as SESSION_PREFIX
from ledger.people.access import SessionSigner, Unauthenticated, check_submitter
from ledger.plaintext import InvalidText, check_plain_text, plain_text_problem
from tests.support.api import VOLUNTEER, TestClient, sign_in
from tests.support.factories import VOLUNTEER_KEY, signed_tally, tally_json
from wallets.custodial import CustodialWallets

SECRET = bytes(range(32))


# -- hole 1: a session token with Unicode digits is a 401, never a 500 or a dropped connection


def _forged(signer: SessionSigner, address: str, expires: str) -> str:
    """A token whose MAC is right for what it says, so only the strict parse can refuse it."""
    import base64
    import hashlib
    import hmac

    message = f"{SESSION_PREFIX}{address}.{expires}".encode()
    mac = base64.urlsafe_b64encode(hmac.new(SECRET, message, hashlib.sha256).digest()).rstrip(b"=").decode()
    return f"{SESSION_PREFIX}{address}.{expires}.{mac}"


UNICODE_TOKENS = {
    "superscript expiry": f"{SESSION_PREFIX}{VOLUNTEER}.\u00b3\u00b9\u2074\u2075.{'A' * 43}",
    "Thai digit expiry": f"{SESSION_PREFIX}{VOLUNTEER}.\u0e53\u0e51\u0e54\u0e55\u0e56\u0e57\u0e58\u0e59\u0e50\u0e50.{'A' * 43}",
    "fullwidth expiry": f"{SESSION_PREFIX}{VOLUNTEER}.\uff19\uff19\uff19\uff19\uff19\uff19\uff19\uff19\uff19.{'A' * 43}",
    "Thai digits in the address": f"{SESSION_PREFIX}0x\u0e51{VOLUNTEER[3:]}.9999999999.{'A' * 43}",
    "superscript in the address": f"{SESSION_PREFIX}0x\u00b3{VOLUNTEER[3:]}.9999999999.{'A' * 43}",
    "leading zero expiry": f"{SESSION_PREFIX}{VOLUNTEER}.09999999999.{'A' * 43}",
    "signed expiry": f"{SESSION_PREFIX}{VOLUNTEER}.+9999999999.{'A' * 43}",
    "not an address": f"{SESSION_PREFIX}volunteer.9999999999.{'A' * 43}",
    "non-ASCII MAC": f"{SESSION_PREFIX}{VOLUNTEER}.9999999999." + "\u00e9" * 43,
    "too few parts": f"{SESSION_PREFIX}{VOLUNTEER}",
}


@pytest.mark.parametrize("name", sorted(UNICODE_TOKENS))
def test_a_malformed_session_token_is_unauthenticated(name: str) -> None:
    signer = SessionSigner(SECRET, lifetime_seconds=3600)
    with pytest.raises(Unauthenticated, match="sign in again"):
        signer.verify(UNICODE_TOKENS[name])


@pytest.mark.parametrize("expires", ["\u00b3\u00b9\u2074\u2075\u2076\u2077\u2078\u2079\u2070\u2070", "\u0e53" * 10])
def test_a_token_correctly_signed_over_unicode_digits_is_still_refused(expires: str) -> None:
    """Even with a MAC that matches (the secret leaked, or a bug that signed such text), an
    expiry that is not ASCII digits is not a time."""
    signer = SessionSigner(SECRET, lifetime_seconds=3600)
    with pytest.raises(Unauthenticated, match="malformed session token"):
        signer.verify(_forged(signer, VOLUNTEER, expires))


def test_a_good_token_still_verifies() -> None:
    signer = SessionSigner(SECRET, lifetime_seconds=3600)
    token, _ = signer.issue(VOLUNTEER)
    assert signer.verify(token) == VOLUNTEER


@pytest.fixture(params=[True, False], ids=["fast-path", "routes"])
def app_client(request: pytest.FixtureRequest, api_state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(app_state=api_state, fast_paths=request.param), raise_server_exceptions=False) as client:
        yield client


# Raw header bytes: a latin-1 byte such as 0xB3 ('³') is what a client can put in a header.
RAW_TOKENS = {
    "superscript expiry (latin-1)": f"Bearer {SESSION_PREFIX}{VOLUNTEER}.\u00b3\u00b9\u00b2.{'A' * 43}".encode("latin-1"),
    "superscript in the address (latin-1)": f"Bearer {SESSION_PREFIX}0x\u00b3{VOLUNTEER[3:]}.9999999999.{'A' * 43}".encode(
        "latin-1"
    ),
    "Thai digit expiry (UTF-8)": f"Bearer {SESSION_PREFIX}{VOLUNTEER}.\u0e53\u0e51.{'A' * 43}".encode(),
    "Thai digits in the address (UTF-8)": f"Bearer {SESSION_PREFIX}0x\u0e51{VOLUNTEER[3:]}.9999999999.{'A' * 43}".encode(),
}


@pytest.mark.parametrize("name", sorted(RAW_TOKENS))
@pytest.mark.parametrize("request_line", ["POST /v1/tallies", "GET /v1/auth/whoami", "GET /v1/aggregates/unofficial/national"])
def test_unicode_digits_in_a_session_token_are_a_401_on_every_path(
    app_client: TestClient, api_state: AppState, name: str, request_line: str
) -> None:
    api_state.access.register_volunteer(address=VOLUNTEER)
    method, path = request_line.split(" ")
    headers = {b"authorization": RAW_TOKENS[name], b"content-type": b"application/json"}
    body = signed_tally(api_state.ledger_app.election) if method == "POST" else None
    answer = app_client.request(method, path, json=body, headers=headers)  # type: ignore[arg-type]
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "unauthenticated"
    assert "sign in again" in answer.json()["errors"][0]["message"]
    # the real volunteer is unaffected
    token = sign_in(app_client, VOLUNTEER_KEY)
    assert app_client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"}).json()["address"] == VOLUNTEER


# -- hole 7: names, labels and contacts are plain text -------------------------------------

THAI_NAMES = ["สมชาย ใจดี", "นางสาวพรทิพย์ ศรีสุข", "ศูนย์ประสานงาน จ.น่าน"]
NOT_PLAIN = {
    "\u202e": "U+202E RIGHT-TO-LEFT OVERRIDE",
    "\u202a": "U+202A LEFT-TO-RIGHT EMBEDDING",
    "\u2066": "U+2066 LEFT-TO-RIGHT ISOLATE",
    "\u2069": "U+2069 POP DIRECTIONAL ISOLATE",
    "\u200b": "U+200B ZERO WIDTH SPACE",
    "\u200d": "U+200D ZERO WIDTH JOINER",
    "\ufeff": "U+FEFF ZERO WIDTH NO-BREAK SPACE",
    "\x07": "U+0007",
    "\x85": "U+0085",
    "\ue000": "U+E000",
    "\U000e0001": "U+E0001 LANGUAGE TAG",
    "\u0378": "U+0378",  # unassigned
    "\u2028": "U+2028 LINE SEPARATOR",
}


@pytest.mark.parametrize("name", THAI_NAMES + ["Somchai O'Brien-Jaidee", "José", "李小龍"])
def test_real_names_are_plain_text(name: str) -> None:
    assert plain_text_problem(name) is None
    assert check_plain_text(name, field="name") == name


@pytest.mark.parametrize("character", sorted(NOT_PLAIN))
def test_invisible_and_control_characters_are_refused_by_code_point(character: str) -> None:
    with pytest.raises(InvalidText) as refused:
        check_plain_text(f"Civic{character}Watch", field="name")
    assert str(refused.value).startswith(f"name: contains {NOT_PLAIN[character]}")
    assert str(refused.value).endswith("names must be plain text")
    assert refused.value.path == ("name",)


def _member_body(**fields: object) -> dict[str, object]:
    return {"custodial": True, "level": 1, "name": "สมชาย ใจดี", "organisation": "civic-watch", **fields}


NAME_PROBES = {
    "member name": ("/v1/members", lambda c: _member_body(name=f"สมชาย{c}ใจดี"), ["name"]),
    "member contact": ("/v1/members", lambda c: _member_body(contact=f"+66 81 234 5678{c}"), ["contact"]),
    "organisation name": ("/v1/organisations", lambda c: {"id": "evil-org", "name": f"iLaw{c}", "kind": "media"}, ["name"]),
    "principal name": ("/v1/admin/principals", lambda c: {"role": "newsroom", "name": f"Thai PBS{c}"}, ["name"]),
    "volunteer name": ("/v1/admin/volunteers", lambda c: {"address": "0x" + "7c" * 20, "name": f"Malee{c}"}, ["name"]),
}


@pytest.mark.parametrize("probe", sorted(NAME_PROBES))
@pytest.mark.parametrize("character", ["\u202e", "\u200b", "\x07", "\ufeff"])
def test_the_api_refuses_names_that_are_not_plain_text(api_state: AppState, probe: str, character: str) -> None:
    _, admin = api_state.access.create_principal(role="admin", name="admin")
    api_state.review.create_organisation(organisation_id="civic-watch", name="Civic Watch", kind="civil_society")
    path, body, where = NAME_PROBES[probe]
    with TestClient(create_app(app_state=api_state), raise_server_exceptions=False) as client:
        answer = client.post(path, json=body(character), headers={"Authorization": f"Bearer {admin}"})
        assert answer.status_code == 422, answer.text
        (error,) = answer.json()["errors"]
        assert error["path"] == where
        assert f"U+{ord(character):04X}" in error["message"] and "must be plain text" in error["message"]
        fine = client.post(path, json=body(""), headers={"Authorization": f"Bearer {admin}"})
        assert fine.status_code == 201, fine.text


def test_the_services_refuse_them_too(api_state: AppState) -> None:
    """The CLI and the demo register people without the API: the ledger checks as well."""
    api_state.review.create_organisation(organisation_id="civic-watch", name="ศูนย์ประสานงาน จ.น่าน", kind="civil_society")
    with pytest.raises(InvalidText, match=r"^contact: contains U\+0000"):
        api_state.review.register_member(
            address="0x" + "7d" * 20, level=1, name="สมชาย ใจดี", organisation_id="civic-watch", contact="+66\x00"
        )
    with pytest.raises(InvalidText, match=r"^name: contains U\+202E RIGHT-TO-LEFT OVERRIDE"):
        api_state.review.create_organisation(organisation_id="evil-org", name="\u202eiLaw", kind="media")
    with pytest.raises(InvalidText, match=r"^name: contains U\+200B"):
        api_state.access.create_principal(role="newsroom", name="Thai\u200bPBS")
    with pytest.raises(InvalidText, match=r"^name: contains U\+2066"):
        api_state.access.register_volunteer(address="0x" + "7e" * 20, name="\u2066Malee")
    member = api_state.review.register_member(
        address="0x" + "7f" * 20, level=1, name="นางสาวพรทิพย์ ศรีสุข", organisation_id="civic-watch", contact="+66 81 234 5678"
    )
    assert member.name == "นางสาวพรทิพย์ ศรีสุข"


# -- hole 2: only the admin or the war room changes a head's constituencies -------------------


def test_a_coordinator_cannot_assign_constituencies_to_a_head(api_state: AppState) -> None:
    """The coordinator of the head's own organisation assigned BKK_2 to a level-2 head, and
    the head's decision in BKK_2 was accepted."""
    review = api_state.review
    review.create_organisation(organisation_id="civic-watch", name="Civic Watch", kind="civil_society")
    head = "0x" + "a1" * 20
    review.register_member(address=head, level=2, name="head", organisation_id="civic-watch")
    review.assign(address=head, areas=["BKK_1"])
    volunteer = "0x" + "a2" * 20
    review.register_member(address=volunteer, level=1, name="volunteer", organisation_id="civic-watch")
    _, coordinator = api_state.access.create_principal(
        role="coordinator", name="coordinator", scope={"organisations": ["civic-watch"]}
    )
    _, admin = api_state.access.create_principal(role="admin", name="admin")
    _, war_room = api_state.access.create_principal(role="war_room", name="war room")
    as_coordinator = {"Authorization": f"Bearer {coordinator}"}
    with TestClient(create_app(app_state=api_state), raise_server_exceptions=False) as client:
        for areas in (["BKK_2"], ["BKK_2-0001"]):  # a constituency, or a unit, to a head
            answer = client.post(f"/v1/members/{head}/assignments", json={"areas": areas}, headers=as_coordinator)
            assert answer.status_code == 403, answer.text
            message = answer.json()["errors"][0]["message"]
            assert "only the admin or the war room" in message and "level-2" in message
        assert review.assigned_areas(head) == {"BKK_1"}
        # a constituency to a level-1 volunteer is no unit: 403 that says what a coordinator assigns
        answer = client.post(f"/v1/members/{volunteer}/assignments", json={"areas": ["BKK_2"]}, headers=as_coordinator)
        assert answer.status_code == 403 and "polling units" in answer.json()["errors"][0]["message"], answer.text
        # what a coordinator may do: units to their own level-1 volunteers
        answer = client.post(f"/v1/members/{volunteer}/assignments", json={"areas": ["BKK_2-0001"]}, headers=as_coordinator)
        assert answer.status_code == 200 and answer.json()["added"] == ["BKK_2-0001"], answer.text
        # the admin and the war room may change a head's constituencies
        for token, area in ((admin, "BKK_2"), (war_room, "BKK_3")):
            answer = client.post(
                f"/v1/members/{head}/assignments", json={"areas": [area]}, headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code == 200 and answer.json()["added"] == [area], answer.text
    assert review.assigned_areas(head) == {"BKK_1", "BKK_2", "BKK_3"}


def test_the_ledger_itself_refuses_a_coordinator_widening_a_head(api_state: AppState) -> None:
    review = api_state.review
    review.create_organisation(organisation_id="civic-watch", name="Civic Watch", kind="civil_society")
    head = "0x" + "a3" * 20
    review.register_member(address=head, level=2, name="head", organisation_id="civic-watch")
    war_room = "0x" + "a4" * 20
    review.register_member(address=war_room, level=3, name="war room", organisation_id="civic-watch")
    for member in (head, war_room):
        with pytest.raises(Forbidden, match="only the admin or the war room"):
            review.assign(address=member, areas=["BKK_2"], acting_role="coordinator", organisation_id="civic-watch")
    with pytest.raises(Forbidden, match="only the admin or the war room"):
        review.assign(address=head, areas=["BKK_2"], organisation_id="civic-watch")  # a coordinator, by its organisation
    with pytest.raises(Forbidden, match="coordinator"):
        review.assign(address=head, areas=["BKK_2"], acting_role="newsroom")
    assert review.assigned_areas(head) == set()
    assert review.assign(address=head, areas=["BKK_2"], acting_role="war_room") == ["BKK_2"]
    # nor does the ledger let a coordinator appoint a head (the route refused it already)
    with pytest.raises(Forbidden, match="only the admin appoints level-2"):
        review.register_member(
            address="0x" + "a5" * 20, level=2, name="head", organisation_id="civic-watch", acting_role="coordinator"
        )


# -- hole 3: API keys do not relay volunteers' tallies; the custodial path checks the key's scope


def _relay_world(api_state: AppState) -> dict[str, str]:
    review, access = api_state.review, api_state.access
    for organisation in ("civic-watch", "campus-count"):
        review.create_organisation(organisation_id=organisation, name=organisation, kind="civil_society")
    custodial = CustodialWallets(api_state.settings).create()
    review.register_member(address=custodial, level=1, name="Malee", organisation_id="civic-watch", custodial=True)
    review.register_member(address=VOLUNTEER, level=1, name="Somchai", organisation_id="civic-watch")
    for member in (custodial, VOLUNTEER):
        review.assign(address=member, areas=["BKK_1-0001", "BKK_1-0002", "BKK_1-0003"])
    custodial_head = CustodialWallets(api_state.settings).create()
    review.register_member(address=custodial_head, level=2, name="head", organisation_id="civic-watch", custodial=True)
    review.assign(address=custodial_head, areas=["BKK_1"])
    tokens = {"custodial": custodial, "custodial_head": custodial_head}
    for name, role, scope in (
        ("war_room", "war_room", None),
        ("head_elsewhere", "constituency_head", {"constituencies": ["MSN_1"]}),
        ("head_here", "constituency_head", {"constituencies": ["BKK_1"]}),
        ("admin", "admin", None),
        ("coordinator", "coordinator", {"organisations": ["civic-watch"]}),
        ("other_coordinator", "coordinator", {"organisations": ["campus-count"]}),
        ("unscoped_coordinator", "coordinator", None),
    ):
        tokens[name] = access.create_principal(role=role, name=name, scope=scope)[1]
    return tokens


@pytest.mark.parametrize("key", ["war_room", "head_elsewhere", "head_here"])
def test_an_api_key_cannot_submit_a_volunteers_signed_tally(app_client: TestClient, api_state: AppState, key: str) -> None:
    """A war-room key, and a head's key scoped to another constituency, relayed a volunteer's
    signed tally (201): ``accept_tally`` skipped ``check_submitter`` for API keys."""
    tokens = _relay_world(api_state)
    tally = signed_tally(api_state.ledger_app.election, "BKK_1-0001", submission_id=f"relayed-{key}")
    answer = app_client.post("/v1/tallies", json=tally, headers={"Authorization": f"Bearer {tokens[key]}"})
    assert answer.status_code == 403, answer.text
    message = answer.json()["errors"][0]["message"]
    assert "POST /v1/custodial/tallies" in message and "signed in" in message
    # the volunteer, signed in, submits it
    token = sign_in(app_client, VOLUNTEER_KEY)
    assert app_client.post("/v1/tallies", json=tally, headers={"Authorization": f"Bearer {token}"}).status_code == 201


RELAYS = {
    # key → (volunteer, status): only a coordinator of the volunteer's organisation, for its custodial level-1 volunteers
    "coordinator": ("custodial", 201),
    "other_coordinator": ("custodial", 403),
    "unscoped_coordinator": ("custodial", 403),
    "war_room": ("custodial", 403),
    "head_here": ("custodial", 403),
    "head_elsewhere": ("custodial", 403),
    "admin": ("custodial", 403),
}


@pytest.mark.parametrize("key", sorted(RELAYS))
def test_only_a_coordinator_of_the_volunteers_organisation_relays_their_count(api_state: AppState, key: str) -> None:
    tokens = _relay_world(api_state)
    volunteer, status = RELAYS[key]
    body = {
        "volunteer": tokens[volunteer],
        "tally": tally_json(api_state.ledger_app.election, "BKK_1-0002", submission_id=f"custodial-{key}"),
    }
    with TestClient(create_app(app_state=api_state), raise_server_exceptions=False) as client:
        answer = client.post("/v1/custodial/tallies", json=body, headers={"Authorization": f"Bearer {tokens[key]}"})
    assert answer.status_code == status, answer.text
    if status == 403:
        assert "coordinator" in answer.json()["errors"][0]["message"]


def test_the_custodial_path_relays_only_for_custodial_level_1_volunteers(api_state: AppState) -> None:
    tokens = _relay_world(api_state)
    headers = {"Authorization": f"Bearer {tokens['coordinator']}"}
    election = api_state.ledger_app.election
    with TestClient(create_app(app_state=api_state), raise_server_exceptions=False) as client:
        own_key = client.post(
            "/v1/custodial/tallies",
            headers=headers,
            json={"volunteer": VOLUNTEER, "tally": tally_json(election, "BKK_1-0003", submission_id="own-key-0001")},
        )
        assert own_key.status_code == 403 and "own key" in own_key.json()["errors"][0]["message"], own_key.text
        head = client.post(
            "/v1/custodial/tallies",
            headers=headers,
            json={"volunteer": tokens["custodial_head"], "tally": tally_json(election, "BKK_1-0003", submission_id="head-0001")},
        )
        assert head.status_code == 403 and "level-1" in head.json()["errors"][0]["message"], head.text


def test_the_relay_rule_is_the_ledgers(api_state: AppState) -> None:
    """``CustodialWallets.relay_tally`` signs only after ``check_relay`` let the caller relay."""
    tokens = _relay_world(api_state)
    wallets = CustodialWallets(api_state.settings)
    election = api_state.ledger_app.election
    member = api_state.review.member(tokens["custodial"])
    war_room = api_state.access.authenticate(tokens["war_room"], client_ip=None)
    with pytest.raises(Forbidden, match="only a coordinator"):
        wallets.relay_tally(war_room, member, tally_json(election), election)
    coordinator = api_state.access.authenticate(tokens["coordinator"], client_ip=None)
    signed = wallets.relay_tally(coordinator, member, tally_json(election), election)
    assert signed["submitter"] == member.address
    with pytest.raises(Forbidden, match="only a signed-in person"):
        check_submitter(coordinator, signed)


# -- hole 4: the public unit review links no address to a volunteer id or organisation --------


def test_the_public_unit_review_shows_no_address_next_to_a_volunteer(api_state: AppState) -> None:
    review, election = api_state.review, api_state.ledger_app.election
    review.create_organisation(organisation_id="civic-watch", name="Civic Watch", kind="civil_society")
    review.register_member(address=VOLUNTEER, level=1, name="Somchai", organisation_id="civic-watch")
    review.assign(address=VOLUNTEER, areas=["BKK_1-0001"])
    head, other_head = "0x" + "b1" * 20, "0x" + "b2" * 20
    review.register_member(address=head, level=2, name="head", organisation_id="civic-watch")
    review.assign(address=head, areas=["BKK_1"])
    review.register_member(address=other_head, level=2, name="other head", organisation_id="civic-watch")
    review.assign(address=other_head, areas=["MSN_1"])
    review.submit_report(signed_tally(election, "BKK_1-0001", submission_id="public-view-0001"))
    public_id = review.member(VOLUNTEER).public_id
    keys = {
        name: api_state.access.create_principal(role=role, name=name, scope=scope)[1]
        for name, role, scope in (
            ("head_here", "constituency_head", {"constituencies": ["BKK_1"]}),
            ("head_elsewhere", "constituency_head", {"constituencies": ["MSN_1"]}),
            ("war_room", "war_room", None),
            ("admin", "admin", None),
            ("newsroom", "newsroom", None),
            ("coordinator", "coordinator", {"organisations": ["civic-watch"]}),
        )
    }
    with TestClient(create_app(app_state=api_state), raise_server_exceptions=False) as client:
        volunteer = sign_in(client, VOLUNTEER_KEY)

        def view(token: str | None) -> dict[str, object]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            answer = client.get("/v1/units/BKK_1-0001/review", headers=headers)
            assert answer.status_code == 200, answer.text
            return answer.json()  # type: ignore[no-any-return]

        for token in (None, keys["newsroom"], keys["head_elsewhere"], keys["coordinator"], volunteer):
            public = view(token)
            text = str(public).lower()
            assert VOLUNTEER.lower() not in text and public_id not in text, public
            (report,) = public["reports"]  # type: ignore[misc]
            assert report["organisation"] == "civic-watch" and "volunteer" not in report
            assert "submitter" not in report["document"] and "signature" not in report["document"]
            assert report["document"]["party_list"]["votes"]  # the numbers stay public
            assert public["view"] == "public"
        for token in (keys["head_here"], keys["war_room"], keys["admin"]):
            full = view(token)
            (report,) = full["reports"]  # type: ignore[misc]
            assert report["volunteer"] == public_id and report["document"]["submitter"] == VOLUNTEER
            assert full["view"] == "full"


def test_public_flags_name_no_address() -> None:
    from ledger.review.queues import public_flags as review_public_flags

    flags = [{"code": "held_submitter", "record_cid": "bafy", "detail": f"{VOLUNTEER} is flagged for repeated rejections"}]
    assert review_public_flags(flags) == [
        {"code": "held_submitter", "record_cid": "bafy", "detail": "the submitter is flagged for repeated rejections"}
    ]


# -- hole 5: sign-out, and a coordinator ends a member's sessions ------------------------------


@pytest.fixture
def cached_state(tmp_path, database_url: str) -> Iterator[AppState]:  # type: ignore[no-untyped-def]
    """An app whose access cache holds entries (the tests' default is no cache): sign-out must
    take effect at once all the same, on the routes and on the fast path."""
    from tests.support import api as api_support

    state = AppState.open(api_support.make_settings(tmp_path / "data", database_url, access_cache_seconds=30.0))
    state.ledger_app.content.put_block(CID.of(RAW, b"board"), b"board")
    state.ledger_app.content.put_block(CID.of(RAW, b"form"), b"form")
    stand_in = getattr(api_support, "stand_in_photos", None)  # the photo index, where tallies' links must point
    if stand_in is not None:
        stand_in(state.ledger_app.ledger)
    yield state
    state.close()


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast-path", "routes"])
def test_a_volunteer_signs_out_every_device(cached_state: AppState, fast_paths: bool) -> None:
    state = cached_state
    state.access.register_volunteer(address=VOLUNTEER)
    election = state.ledger_app.election
    with TestClient(create_app(app_state=state, fast_paths=fast_paths), raise_server_exceptions=False) as client:
        lost_phone, new_phone = sign_in(client, VOLUNTEER_KEY), sign_in(client, VOLUNTEER_KEY)
        lost = {"Authorization": f"Bearer {lost_phone}"}
        before = client.post("/v1/tallies", json=signed_tally(election, submission_id="before-0001"), headers=lost)
        assert before.status_code == 201, before.text
        answer = client.post("/v1/auth/signout", headers={"Authorization": f"Bearer {new_phone}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["address"] == VOLUNTEER and answer.json()["sessions_ended_at"].endswith("Z")
        for token in (lost_phone, new_phone):
            headers = {"Authorization": f"Bearer {token}"}
            refused = client.post("/v1/tallies", json=signed_tally(election, submission_id="after-0001"), headers=headers)
            assert refused.status_code == 401 and "session was ended" in refused.text, refused.text
            assert client.get("/v1/auth/whoami", headers=headers).status_code == 401
        again = sign_in(client, VOLUNTEER_KEY)
        answer = client.post(
            "/v1/tallies", json=signed_tally(election, submission_id="after-0001"), headers={"Authorization": f"Bearer {again}"}
        )
        assert answer.status_code == 201, answer.text


def test_a_coordinator_ends_the_sessions_of_their_own_members_only(cached_state: AppState) -> None:
    state = cached_state
    review = state.review
    for organisation in ("civic-watch", "campus-count"):
        review.create_organisation(organisation_id=organisation, name=organisation, kind="civil_society")
    review.register_member(address=VOLUNTEER, level=1, name="Somchai", organisation_id="civic-watch")
    keys = {
        name: state.access.create_principal(role="coordinator", name=name, scope={"organisations": [organisation]})[1]
        for name, organisation in (("ours", "civic-watch"), ("theirs", "campus-count"))
    }
    _, admin = state.access.create_principal(role="admin", name="admin")
    _, war_room = state.access.create_principal(role="war_room", name="war room")
    path = f"/v1/members/{VOLUNTEER}/sessions/revoke"
    with TestClient(create_app(app_state=state), raise_server_exceptions=False) as client:
        token = sign_in(client, VOLUNTEER_KEY)
        mine = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/auth/whoami", headers=mine).status_code == 200
        for key in (keys["theirs"], war_room):
            answer = client.post(path, headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 403, answer.text
        assert client.get("/v1/auth/whoami", headers=mine).status_code == 200
        assert client.post(path, headers={"Authorization": f"Bearer {keys['ours']}"}).status_code == 200
        assert client.get("/v1/auth/whoami", headers=mine).status_code == 401
        token = sign_in(client, VOLUNTEER_KEY)
        assert client.post(path, headers={"Authorization": f"Bearer {admin}"}).status_code == 200
        assert client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        # an API key has no sessions to end
        answer = client.post("/v1/auth/signout", headers={"Authorization": f"Bearer {war_room}"})
        assert answer.status_code == 403 and "DELETE /v1/admin/principals" in answer.text
        unknown = client.post(f"/v1/members/{'0x' + '99' * 20}/sessions/revoke", headers={"Authorization": f"Bearer {admin}"})
        assert unknown.status_code == 404


def test_a_legacy_token_works_until_the_sessions_are_ended(api_state: AppState) -> None:
    """Tokens issued before session generations (``tvs1.``) count as generation 0."""
    import base64
    import hashlib
    import hmac
    import time

    access = api_state.access
    access.register_volunteer(address=VOLUNTEER)
    expires = int(time.time()) + 600
    message = f"tvs1.{VOLUNTEER}.{expires}".encode()
    mac = base64.urlsafe_b64encode(hmac.new(access.sessions._secret, message, hashlib.sha256).digest()).rstrip(b"=")
    legacy = f"tvs1.{VOLUNTEER}.{expires}.{mac.decode()}"
    assert access.authenticate(legacy, client_ip=None).address == VOLUNTEER
    access.end_sessions(VOLUNTEER)
    with pytest.raises(Unauthenticated, match="session was ended"):
        access.authenticate(legacy, client_ip=None)
    token, _ = access.sessions.issue(VOLUNTEER, generation=access._session_generation(VOLUNTEER) or 0)
    assert token.startswith("tvs2.") and access.authenticate(token, client_ip=None).address == VOLUNTEER


def test_a_generation_in_unicode_digits_is_malformed() -> None:
    signer = SessionSigner(SECRET, lifetime_seconds=3600)
    for generation in ("\u0e51", "\u00b9", "01", "-1"):
        with pytest.raises(Unauthenticated, match="malformed session token"):
            signer.verify(f"tvs2.{VOLUNTEER}.{generation}.9999999999.{'A' * 43}")


@pytest.mark.parametrize("path", ["/v1/tallies", "/v1/auth/whoami", "/v1/aggregates/unofficial/national"])
def test_a_raw_latin_1_superscript_in_a_token_header_is_a_401(app_client: TestClient, path: str) -> None:
    """The test client re-encodes header text as UTF-8, but a real client can send the byte
    0xB3 ('³' in latin-1, the encoding ASGI servers decode headers with): sent here as raw
    ASGI, so the expiry the token check reads is '³¹²'."""
    raw = f"Bearer {SESSION_PREFIX}{VOLUNTEER}.".encode() + b"\xb3\xb9\xb2." + b"A" * 43
    method = "POST" if path == "/v1/tallies" else "GET"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", raw),
            (b"content-type", b"application/json"),
            (b"content-length", b"2"),
        ],
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    app_client.portal.call(app_client.app, scope, receive, send)  # type: ignore[union-attr]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")  # type: ignore[misc]
    assert start["status"] == 401, body
    assert b"malformed session token" in body


def test_a_lookup_racing_the_sign_out_cannot_bring_the_old_generation_back(api_state) -> None:  # type: ignore[no-untyped-def]
    """A request that read the generation just before ``end_sessions`` may put it in the
    cache just after: the token it belongs to must still be refused."""
    from ledger.people.access import Unauthenticated
    from tests.support.api import VOLUNTEER

    access = api_state.access
    access.register_volunteer(address=VOLUNTEER, name="volunteer 42")
    access._volunteers.ttl = 60.0  # the cache on, as in production
    token, _ = access.sessions.issue(VOLUNTEER, generation=access._session_generation(VOLUNTEER) or 0)
    assert access.authenticate(token, client_ip=None).address == VOLUNTEER
    stale = access._session_generation(VOLUNTEER)
    access.end_sessions(VOLUNTEER)
    access._volunteers.put(VOLUNTEER, stale)  # the racing lookup lands after the sign-out
    with pytest.raises(Unauthenticated):
        access.authenticate(token, client_ip=None)
