"""A custodial volunteer finishes their job on their own phone: signed in with their
coordinator's invitation code, they upload photos, submit their count (signed by the ledger
with their custodial key) and read their receipts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from api.main import create_app
from api.state import AppState
from tests.support.api import TestClient, make_settings
from tests.support.factories import tally_json
from tests.support.paths import VECTORS
from wallets.custodial import CustodialWallets

JPEG = (VECTORS / "photos" / "jpeg_exif_gps.jpg").read_bytes()


class Night:
    def __init__(self, client: TestClient, state: AppState):
        self.client = client
        self.state = state
        review = state.review
        review.create_organisation(organisation_id="ilaw", name="iLaw", kind="civil_society")
        review.create_organisation(organisation_id="other", name="Other", kind="civil_society")
        _, coordinator = state.access.create_principal(role="coordinator", name="c", scope={"organisations": ["ilaw"]})
        _, stranger = state.access.create_principal(role="coordinator", name="s", scope={"organisations": ["other"]})
        self.coordinator = {"Authorization": f"Bearer {coordinator}"}
        self.stranger = {"Authorization": f"Bearer {stranger}"}
        self.volunteer = CustodialWallets(state.settings).create()
        review.register_member(address=self.volunteer, level=1, name="Malee", organisation_id="ilaw", custodial=True)
        review.assign(address=self.volunteer, areas=["BKK_1-0010"])

    def invite(self, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(
            "/v1/custodial/invitations", json={"volunteer": self.volunteer}, headers=headers or self.coordinator
        )

    def sign_in(self, code: str) -> Any:
        return self.client.post("/v1/auth/invitation", json={"code": code})


@pytest.fixture
def night(tmp_path: Any) -> Iterator[Night]:
    state = AppState.open(make_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'tally.db'}"))
    with TestClient(create_app(app_state=state), raise_server_exceptions=False) as client:
        yield Night(client, state)
    state.close()


def test_a_custodial_volunteer_signs_in_uploads_submits_and_reads_their_receipt(night: Night) -> None:
    invitation = night.invite()
    assert invitation.status_code == 201, invitation.text
    code = invitation.json()["code"]
    assert len(code) == 19 and code.count("-") == 3  # four groups of four, to read out over the phone
    session = night.sign_in(code.lower().replace("-", " "))  # as typed on a phone
    assert session.status_code == 201 and session.json()["address"] == night.volunteer, session.text
    me = {"Authorization": f"Bearer {session.json()['token']}"}
    photos = [
        night.client.post("/v1/photos", content=JPEG[:-2] + bytes([n]) + JPEG[-2:], headers={**me, "Content-Type": "image/jpeg"})
        for n in (1, 2)
    ]
    assert [p.status_code for p in photos] == [201, 201], photos[0].text
    tally = tally_json(night.state.ledger_app.election, "BKK_1-0010", submission_id="own-count-0001")
    tally = {k: v for k, v in tally.items() if k not in ("submitter", "signature")}
    tally["photos"] = {"tally_board": {"/": photos[0].json()["cid"]}, "form_5_18": {"/": photos[1].json()["cid"]}}
    submitted = night.client.post("/v1/custodial/tallies", json={"volunteer": night.volunteer, "tally": tally}, headers=me)
    assert submitted.status_code == 201, submitted.text
    receipt = submitted.json()
    mine = night.client.get("/v1/me/records", headers=me).json()
    assert mine["address"] == night.volunteer
    assert [(r["record_cid"], r["signer"]) for r in mine["records"]] == [(receipt["record_cid"], night.volunteer)]
    assert mine["records"][0]["receipt"] == receipt


def test_an_invitation_works_once_and_not_after_it_expires(night: Night) -> None:
    code = night.invite().json()["code"]
    assert night.sign_in(code).status_code == 201
    again = night.sign_in(code)
    assert again.status_code == 401 and "used already" in again.json()["errors"][0]["message"]
    late = night.invite().json()["code"]
    clock = night.state.access.clock
    night.state.access.clock = lambda: clock() + timedelta(hours=49)  # TALLY_INVITATION_LIFETIME_HOURS is 48
    expired = night.sign_in(late)
    assert expired.status_code == 401 and "expired" in expired.json()["errors"][0]["message"]
    unknown = night.sign_in("ABCD-EFGH-JKLM-NPQR")
    assert unknown.status_code == 401 and "no such invitation" in unknown.json()["errors"][0]["message"]
    malformed = night.sign_in("0000-1111")
    assert malformed.status_code == 401 and "16 letters and digits" in malformed.json()["errors"][0]["message"]


def test_ending_a_volunteers_sessions_ends_the_invitations_issued_before(night: Night) -> None:
    code = night.invite().json()["code"]
    ended = night.client.post(f"/v1/members/{night.volunteer}/sessions/revoke", headers=night.coordinator)
    assert ended.status_code == 200, ended.text
    refused = night.sign_in(code)
    assert refused.status_code == 401 and "sessions were ended" in refused.json()["errors"][0]["message"]
    assert night.sign_in(night.invite().json()["code"]).status_code == 201  # a new one works


def test_only_their_organisations_coordinator_invites_and_a_volunteer_submits_only_their_own(night: Night) -> None:
    refused = night.invite(night.stranger)
    assert refused.status_code == 403 and "relays only for other" in refused.json()["errors"][0]["message"]
    other = CustodialWallets(night.state.settings).create()
    night.state.review.register_member(address=other, level=1, name="Somsak", organisation_id="ilaw", custodial=True)
    me = {"Authorization": f"Bearer {night.sign_in(night.invite().json()['code']).json()['token']}"}
    tally = tally_json(night.state.ledger_app.election, "BKK_1-0011", submission_id="not-mine-0001")
    tally = {k: v for k, v in tally.items() if k not in ("submitter", "signature")}
    theirs = night.client.post("/v1/custodial/tallies", json={"volunteer": other, "tally": tally}, headers=me)
    assert theirs.status_code == 403, theirs.text
    assert night.client.post("/v1/custodial/invitations", json={"volunteer": other}, headers=me).status_code == 403
