"""Schemathesis against the app's own OpenAPI document: no 5xx, and every answer (status,
content type, body) as the document says. Bounded: ``MAX_EXAMPLES`` examples per
operation, derandomized (the same examples every run)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from api.main import create_app
from api.state import AppState
from ledger.core.cid import CID, RAW
from tests.support.api import VOLUNTEER, TestClient, make_settings, sign_in
from tests.support.factories import VOLUNTEER_KEY, signed_tally, stand_in_photos
from tests.support.paths import VECTORS

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import schemathesis
    from schemathesis.specs.openapi.checks import positive_data_acceptance

MAX_EXAMPLES = 25
# Bodies whose validity the schema cannot state: a tally must be signed, add up and name
# stored photos; a photo must be a JPEG, PNG or HEIC by its bytes. For these, a body that
# fits the schema may still be refused (422, 415): every other check still applies.
# Bodies whose validity the schema cannot express: a signature, an image's bytes, or names
# that must exist in the ledger (scopes, organisations, members, units, records). For these
# only "schema-valid requests are accepted" is not checked; everything else still is.
# Names must be plain text (ledger/plaintext.py), and no pattern lists every unassigned code point.
SEMANTIC_BODIES = {
    "/v1/tallies",
    "/v1/photos",
    "/v1/admin/principals",
    "/v1/members",
    "/v1/members/{address}/assignments",
    "/v1/decisions",
    "/v1/custodial/tallies",
    "/v1/custodial/invitations",
    "/v1/authority/entries",
    "/v1/auth/invitation",
    "/v1/admin/volunteers",
    "/v1/organisations",
}
JPEG = (VECTORS / "photos" / "jpeg_exif_gps.jpg").read_bytes()


class Target:
    def __init__(self, app: Any, admin: str, volunteer: str):
        self.app = app
        self.admin = admin
        self.volunteer = volunteer


@pytest.fixture
def target(tmp_path: Path, database_url: str) -> Iterator[Target]:
    # The refresh loop on: aggregate reads then take the fast path (api/routes/hot.py), which is checked too.
    state = AppState.open(
        make_settings(
            tmp_path / "data",
            database_url,
            api_refresh_aggregates=True,
            aggregates_refresh_seconds=0.2,
            access_cache_seconds=30.0,
        )
    )
    content = state.ledger_app.content
    content.put_block(CID.of(RAW, b"board"), b"board")
    content.put_block(CID.of(RAW, b"form"), b"form")
    stand_in_photos(state.ledger_app.ledger)
    election = state.ledger_app.election
    for unit in ("BKK_1-0001", "BKK_1-0002"):
        state.ledger.submit_tally(signed_tally(election, unit, submission_id=f"schema-{unit}"))
    state.ledger_app.batcher.seal_due(force=True)
    state.ledger.submit_tally(signed_tally(election, "BKK_1-0003", submission_id="schema-pending"))
    _, admin = state.access.create_principal(role="admin", name="schemathesis")
    state.access.register_volunteer(address=VOLUNTEER)
    app = create_app(app_state=state)
    with TestClient(app) as client:
        volunteer = sign_in(client, VOLUNTEER_KEY)
        client.post("/v1/photos", content=JPEG, headers={"Authorization": f"Bearer {volunteer}", "Content-Type": "image/jpeg"})
        yield Target(app, admin, volunteer)
    state.close()


@pytest.fixture
def api_schema(target: Target) -> Any:
    schema = schemathesis.openapi.from_asgi("/openapi.json", target.app)
    # The stream runs until the client leaves; it has its own bounded tests.
    return schema.exclude(path="/v1/feed/stream")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_openapi_document(case: Any, target: Target) -> None:
    if case.operation.path == "/v1/feed/stream":
        pytest.skip("the stream runs until the client leaves; tests/api/test_api_flows.py bounds it")
    roles = case.operation.definition.raw.get("x-roles", [])
    token = target.volunteer if roles == ["volunteer"] else target.admin
    headers = dict(case.headers or {})
    if case.headers is None or "Authorization" in headers:
        # Replace whatever credentials were generated with real ones, except where the case
        # left the header out on purpose (a negative case: it must then be refused).
        headers["Authorization"] = (
            f"Bearer {token}" if headers.get("Authorization", "Bearer ") == "Bearer " else headers["Authorization"]
        )
    excluded = []
    if case.operation.method.upper() == "POST" and case.operation.path in SEMANTIC_BODIES:
        excluded.append(positive_data_acceptance)
    case.call_and_validate(headers=headers, excluded_checks=excluded)
