"""Who may call what: every role (and anonymous) against every endpoint.

The table below is written out by hand, independently of ``api/``: a route whose roles
change, or a new route missing from the table, fails here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from api.main import create_app
from api.state import AppState
from ledger.core.cid import CID, RAW
from tests.support.api import KEYED_ROLES, VOLUNTEER, TestClient, make_settings, sign_in
from tests.support.factories import VOLUNTEER_KEY, signed_tally, stand_in_photos, tally_json
from tests.support.paths import VECTORS
from wallets.custodial import CustodialWallets

ROLES = ("anonymous", "volunteer", *KEYED_ROLES)
EVERYONE = frozenset(ROLES)
VOLUNTEERS = frozenset({"volunteer"})
REPORTERS = frozenset({"volunteer", "constituency_head", "war_room"})
MANAGERS = frozenset({"admin", "coordinator"})
OVERSIGHT = frozenset({"admin", "coordinator", "war_room"})
DECIDERS = frozenset({"constituency_head", "war_room"})
FEED = frozenset({"newsroom", "war_room", "admin"})
ADMIN = frozenset({"admin"})
JPEG = (VECTORS / "photos" / "jpeg_no_exif.jpg").read_bytes()
THROWAWAY_VOLUNTEER = "0x" + "5a" * 20


class World:
    def __init__(self, client: TestClient, state: AppState):
        self.client = client
        self.state = state
        self.tokens: dict[str, str | None] = {"anonymous": None}
        self.organisations = 0
        state.review.create_organisation(organisation_id="matrix-org", name="Matrix", kind="civil_society")
        scopes = {"coordinator": {"organisations": ["matrix-org"]}, "constituency_head": {"constituencies": ["BKK_1"]}}
        for role in KEYED_ROLES:
            _, self.tokens[role] = state.access.create_principal(role=role, name=f"matrix {role}", scope=scopes.get(role))
        self.member = CustodialWallets(state.settings).create()
        state.review.register_member(address=self.member, level=1, name="Malee", organisation_id="matrix-org", custodial=True)
        state.review.assign(address=self.member, areas=["BKK_1-0010"])
        self.custodial_tally = {
            k: v for k, v in tally_json(state.ledger_app.election, "BKK_1-0010", submission_id="custodial-0001").items()
        }
        state.access.register_volunteer(address=VOLUNTEER)
        state.access.register_volunteer(address=THROWAWAY_VOLUNTEER)
        self.tokens["volunteer"] = sign_in(client, VOLUNTEER_KEY)
        self.throwaway_principal = state.access.create_principal(role="auditor", name="to revoke")[0].id
        election = state.ledger_app.election
        self.tally = signed_tally(election, "BKK_1-0009", submission_id="matrix-0001")
        self.record_cid = state.ledger.submit_tally(self.tally).receipt["record_cid"]
        state.ledger_app.batcher.seal_due(force=True)
        volunteer = {"Authorization": f"Bearer {self.tokens['volunteer']}", "Content-Type": "image/jpeg"}
        self.photo_cid = client.post("/v1/photos", content=JPEG, headers=volunteer).json()["cid"]

    def next_organisation(self) -> str:
        self.organisations += 1
        return f"matrix-org-{self.organisations}"

    def headers(self, role: str) -> dict[str, str]:
        token = self.tokens[role]
        return {"Authorization": f"Bearer {token}"} if token else {}


def _session(world: World, headers: dict[str, str]) -> httpx.Response:
    challenge = world.client.post("/v1/auth/challenge", json={"address": VOLUNTEER}).json()
    signature = Account.sign_message(encode_defunct(text=challenge["message"]), private_key=VOLUNTEER_KEY).signature
    body = {"address": VOLUNTEER, "nonce": challenge["nonce"], "signature": "0x" + bytes(signature).hex()}
    answer: httpx.Response = world.client.post("/v1/auth/session", json=body, headers=headers)
    return answer


def _sign_out(world: World, headers: dict[str, str]) -> httpx.Response:
    """Sign out, then sign the shared volunteer in again for the probes after this one."""
    answer: httpx.Response = world.client.post("/v1/auth/signout", headers=headers)
    if answer.status_code == 200 and headers == world.headers("volunteer"):
        world.tokens["volunteer"] = sign_in(world.client, VOLUNTEER_KEY)
    return answer


Probe = Callable[[World, dict[str, str]], httpx.Response]


def get(path: str) -> Probe:
    return lambda world, headers: world.client.get(path.format(w=world), headers=headers)


# route → (roles allowed, probe, statuses the probe gets when allowed)
TABLE: dict[str, tuple[frozenset[str], Probe, set[int]]] = {
    "POST /v1/auth/challenge": (
        EVERYONE,
        lambda w, h: w.client.post("/v1/auth/challenge", json={"address": VOLUNTEER}, headers=h),
        {201},
    ),
    "POST /v1/auth/session": (EVERYONE, _session, {201}),
    "GET /v1/auth/whoami": (EVERYONE, get("/v1/auth/whoami"), {200}),
    "POST /v1/auth/signout": (REPORTERS, _sign_out, {200}),
    "POST /v1/admin/principals": (
        ADMIN,
        lambda w, h: w.client.post("/v1/admin/principals", json={"role": "newsroom", "name": "x"}, headers=h),
        {201},
    ),
    "GET /v1/admin/principals": (ADMIN, get("/v1/admin/principals"), {200}),
    "DELETE /v1/admin/principals/{principal_id}": (
        ADMIN,
        lambda w, h: w.client.delete(f"/v1/admin/principals/{w.throwaway_principal}", headers=h),
        {200},
    ),
    "POST /v1/admin/volunteers": (
        ADMIN,
        lambda w, h: w.client.post("/v1/admin/volunteers", json={"address": "0x" + "6b" * 20}, headers=h),
        {200, 201},
    ),
    "GET /v1/admin/volunteers": (ADMIN, get("/v1/admin/volunteers"), {200}),
    "DELETE /v1/admin/volunteers/{address}": (
        ADMIN,
        lambda w, h: w.client.delete(f"/v1/admin/volunteers/{THROWAWAY_VOLUNTEER}", headers=h),
        {200},
    ),
    "POST /v1/photos": (
        VOLUNTEERS,
        lambda w, h: w.client.post("/v1/photos", content=JPEG, headers={**h, "Content-Type": "image/jpeg"}),
        {200, 201},
    ),
    "GET /v1/photos/{cid}": (EVERYONE, get("/v1/photos/{w.photo_cid}"), {200}),
    "POST /v1/tallies": (REPORTERS, lambda w, h: w.client.post("/v1/tallies", json=w.tally, headers=h), {200, 201}),
    "GET /v1/records/{cid}": (EVERYONE, get("/v1/records/{w.record_cid}"), {200}),
    "GET /v1/units/{unit_id}/records": (EVERYONE, get("/v1/units/BKK_1-0009/records"), {200}),
    "GET /v1/proofs/{cid}": (EVERYONE, get("/v1/proofs/{w.record_cid}"), {200}),
    "GET /v1/units/{unit_id}/proofs": (EVERYONE, get("/v1/units/BKK_1-0009/proofs"), {200}),
    "GET /v1/batches": (EVERYONE, get("/v1/batches"), {200}),
    "GET /v1/batches/{batch_id}": (EVERYONE, get("/v1/batches/1"), {200}),
    "GET /v1/batches/{batch_id}/oz-dump": (EVERYONE, get("/v1/batches/1/oz-dump"), {200}),
    "GET /v1/content/{cid}": (EVERYONE, get("/v1/content/{w.record_cid}?format=car"), {200}),
    "GET /v1/election": (EVERYONE, get("/v1/election"), {200}),
    "GET /v1/election/constituencies/{constituency_id}": (EVERYONE, get("/v1/election/constituencies/BKK_1"), {200}),
    "GET /v1/health": (EVERYONE, get("/v1/health"), {200}),
    "GET /v1/ready": (EVERYONE, get("/v1/ready"), {200}),
    "GET /v1/aggregates/{view}/national": (EVERYONE, get("/v1/aggregates/unofficial/national"), {200}),
    "GET /v1/aggregates/{view}/provinces": (EVERYONE, get("/v1/aggregates/certified/provinces?format=csv"), {200}),
    "GET /v1/aggregates/{view}/provinces/{province_id}": (EVERYONE, get("/v1/aggregates/unofficial/provinces/BKK"), {200}),
    "GET /v1/aggregates/{view}/constituencies": (EVERYONE, get("/v1/aggregates/unofficial/constituencies"), {200}),
    "GET /v1/aggregates/{view}/constituencies/{constituency_id}": (
        EVERYONE,
        get("/v1/aggregates/unofficial/constituencies/BKK_1"),
        {200},
    ),
    "GET /v1/aggregates/{view}/party-list": (EVERYONE, get("/v1/aggregates/unofficial/party-list"), {200}),
    "GET /v1/aggregates/{view}/house": (EVERYONE, get("/v1/aggregates/unofficial/house"), {200}),
    "GET /v1/feed": (FEED, get("/v1/feed?limit=5"), {200}),
    "GET /v1/feed/stream": (FEED, get("/v1/feed/stream?max_events=1"), {200}),
    # the hierarchy and review: allowed roles get past the role check (200/201, or a 4xx
    # about the body or the caller's own scope); everyone else gets 401/403 from it
    "POST /v1/organisations": (
        ADMIN,
        lambda w, h: w.client.post(
            "/v1/organisations", json={"id": w.next_organisation(), "name": "Org", "kind": "university"}, headers=h
        ),
        {201},
    ),
    "GET /v1/organisations": (EVERYONE, get("/v1/organisations"), {200}),
    "POST /v1/members": (
        MANAGERS,
        lambda w, h: w.client.post(
            "/v1/members", json={"custodial": True, "level": 1, "name": "Somchai", "organisation": "matrix-org"}, headers=h
        ),
        {201},
    ),
    "GET /v1/members/{address}": (MANAGERS, get("/v1/members/{w.member}"), {200}),
    "POST /v1/members/{address}/assignments": (
        OVERSIGHT,
        lambda w, h: w.client.post(f"/v1/members/{w.member}/assignments", json={"areas": ["BKK_2-0001"]}, headers=h),
        {200},
    ),
    "POST /v1/members/{address}/sessions/revoke": (
        MANAGERS,
        lambda w, h: w.client.post(f"/v1/members/{w.member}/sessions/revoke", headers=h),
        {200},
    ),
    "GET /v1/members-flagged": (OVERSIGHT, get("/v1/members-flagged"), {200}),
    "GET /v1/coverage": (EVERYONE, get("/v1/coverage?constituency=BKK_2"), {200}),
    "GET /v1/coverage/{constituency_id}/uncovered": (OVERSIGHT, get("/v1/coverage/BKK_2/uncovered?limit=5"), {200}),
    "GET /v1/review/queue": (DECIDERS, get("/v1/review/queue"), {200}),
    "GET /v1/units/{unit_id}/review": (EVERYONE, get("/v1/units/BKK_1-0009/review"), {200}),
    "POST /v1/decisions": (DECIDERS, lambda w, h: w.client.post("/v1/decisions", json={}, headers=h), {422}),
    # a volunteer gets past the role check and is refused for another volunteer's count (403:
    # test_custodial.py has their own); the coordinator relays it
    "POST /v1/custodial/tallies": (
        frozenset({"coordinator", "volunteer"}),
        lambda w, h: w.client.post("/v1/custodial/tallies", json={"volunteer": w.member, "tally": w.custodial_tally}, headers=h),
        {200, 201, 403},
    ),
    "POST /v1/custodial/invitations": (
        frozenset({"coordinator"}),
        lambda w, h: w.client.post("/v1/custodial/invitations", json={"volunteer": w.member}, headers=h),
        {201},
    ),
    "POST /v1/auth/invitation": (
        EVERYONE,
        lambda w, h: w.client.post("/v1/auth/invitation", json={"code": "AAAA-BBBB-CCCC-DDDD"}, headers=h),
        {401},
    ),
    "GET /v1/me/records": (VOLUNTEERS, get("/v1/me/records"), {200}),
    "POST /v1/authority/entries": (ADMIN, lambda w, h: w.client.post("/v1/authority/entries", json={}, headers=h), {422}),
}


# Routes whose roles sign in with their own key (x-roles) where an API key of the role is
# refused: a tally is submitted by the person who signed it (relaying is the custodial path's).
KEYS_REFUSED: dict[str, frozenset[str]] = {
    "POST /v1/tallies": frozenset({"constituency_head", "war_room"}),
    "POST /v1/auth/signout": frozenset({"constituency_head", "war_room"}),  # an API key has no sessions
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("matrix")
    settings = make_settings(directory / "data", f"sqlite:///{directory / 'tally.db'}")
    state = AppState.open(settings)
    state.ledger_app.content.put_block(CID.of(RAW, b"board"), b"board")
    state.ledger_app.content.put_block(CID.of(RAW, b"form"), b"form")
    stand_in_photos(state.ledger_app.ledger)
    with TestClient(create_app(app_state=state), raise_server_exceptions=False) as client:
        yield World(client, state)
    state.close()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(TABLE))
def test_role_may_or_may_not_call_route(world: World, route: str, role: str) -> None:
    allowed, probe, ok = TABLE[route]
    answer = probe(world, world.headers(role))
    if role in KEYS_REFUSED.get(route, ()):
        assert answer.status_code == 403 and "API key" in answer.text, f"{role} key on {route}: {answer.text[:300]}"
    elif role in allowed:
        assert answer.status_code in ok, f"{role} on {route}: {answer.status_code} {answer.text[:300]}"
    else:
        expected = 401 if role == "anonymous" else 403
        assert answer.status_code == expected, f"{role} on {route}: {answer.status_code} {answer.text[:300]}"
        assert answer.json()["error"] == ("unauthenticated" if expected == 401 else "forbidden")


def test_the_table_covers_every_route_and_matches_the_openapi_roles(world: World) -> None:
    document: dict[str, Any] = world.client.get("/openapi.json").json()
    published = {
        f"{method.upper()} {path}": frozenset(operation["x-roles"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert published.keys() == TABLE.keys()
    for route, (allowed, _, _) in TABLE.items():
        assert published[route] == allowed, route
        operation = document["paths"][route.split(" ", 1)[1]][route.split(" ", 1)[0].lower()]
        assert operation["description"].startswith("**Roles:**")
