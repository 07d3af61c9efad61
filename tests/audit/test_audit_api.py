"""``tally verify`` against a running API: it trusts only the chain and content re-hashed
from the gateway, so tampering with a database row, a stored block or a served aggregate
after anchoring is caught in every case."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from api.main import create_app
from api.state import AppState
from ledger.audit import Auditor, GatewaySource
from ledger.chain.anvil import AnvilNode
from ledger.chain.deploy import open_evidence_client
from ledger.core.cid import CID
from ledger.sealing.anchoring import AnchorWorker
from ledger.settings import Settings
from ledger.store import Entry
from tests.support.api import TestClient, make_settings
from tests.support.chain import HAVE_ANVIL
from tests.support.review import CONSTITUENCY, address, decide, tally

pytestmark = pytest.mark.skipif(not HAVE_ANVIL, reason="anvil not installed (run npm ci)")
BASE = "http://testserver"


def night(state: AppState) -> list[str]:
    """Two organisations report three units, the war room certifies them; all anchored."""
    review = state.review
    units = [u.id for u in state.ledger_app.election.polling_units(CONSTITUENCY)][:3]
    for org in ("org-a", "org-b"):
        review.create_organisation(organisation_id=org, name=org, kind="civil_society")
        review.register_member(address=address(org), level=1, name=org, organisation_id=org)
        review.assign(address=address(org), areas=units, organisation_id=org)
    review.register_member(address=address("war-room"), level=3, name="war room", organisation_id=None)
    for unit in units:
        for org in ("org-a", "org-b"):
            review.submit_report(tally(review, org, unit))
        decide(review, "war-room", "certify", unit, record=review.replay.unit(unit).accepted)
    state.ledger_app.batcher.seal_due(force=True)
    AnchorWorker(
        database=state.ledger_app.database, content=state.ledger_app.content, client=open_evidence_client(state.settings)
    ).drain()
    return [review.replay.unit(u).certified for u in units]


@pytest.fixture
def api_settings(settings: Settings, anvil: AnvilNode, database_url: str) -> Settings:
    return make_settings(settings.data_dir, database_url, anvil_port=settings.anvil_port, open_reporting=False)


def audit(client: Any, state: AppState) -> Auditor:
    return Auditor(
        chain=open_evidence_client(state.settings),
        content=GatewaySource(BASE, client),
        election=state.ledger_app.election,
        api=client,
        api_url=BASE,
    )


@pytest.fixture
def served(api_settings: Settings) -> Iterator[tuple[TestClient, AppState, list[str]]]:
    state = AppState.open(api_settings)
    certified = night(state)
    with TestClient(create_app(app_state=state)) as client:
        yield client, state, certified
    state.close()


def test_an_honest_deployment_checks_out_through_its_gateway(served: tuple[TestClient, AppState, list[str]]) -> None:
    client, state, certified = served
    report = audit(client, state).verify_all()
    assert report.ok, [str(m) for m in report.mismatches]
    assert report.certified["constituencies"][CONSTITUENCY]["units"] == 3
    assert audit(client, state).verify_record(certified[0]).ok
    unit = state.ledger.entry(certified[0]).polling_unit
    assert audit(client, state).verify_unit(unit).ok


class TamperingClient:
    """Stands for a server (or a proxy) that alters a published aggregate."""

    def __init__(self, client: TestClient):
        self.client = client

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        response = self.client.get(url, **kwargs)
        if url.endswith("/v1/aggregates/certified/constituencies"):
            body = response.json()
            items = body["constituencies"] if isinstance(body, dict) else body
            for item in items:
                if item["constituency_id"] == CONSTITUENCY:
                    item["candidates"][0]["votes"] += 7
            return httpx.Response(200, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        return response


def test_a_served_aggregate_that_was_altered_is_caught(served: tuple[TestClient, AppState, list[str]]) -> None:
    client, state, _ = served
    report = audit(TamperingClient(client), state).verify_all()
    assert [m.what for m in report.mismatches] == ["published certified result"]
    assert CONSTITUENCY in report.mismatches[0].where


def test_a_tampered_block_behind_the_gateway_is_caught(served: tuple[TestClient, AppState, list[str]]) -> None:
    client, state, certified = served
    path = state.ledger_app.content.path_of(CID.parse(certified[1]))
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    path.write_bytes(bytes(data))
    report = audit(client, state).verify_all()
    assert not report.ok
    assert any(certified[1] in m.where for m in report.mismatches)


def test_a_tampered_database_row_is_caught(api_settings: Settings) -> None:
    state = AppState.open(api_settings)
    certified = night(state)
    state.close()
    # After anchoring, someone edits a certified record's numbers in the database.
    database = AppState.open(api_settings)
    with database.ledger_app.database.session() as session:
        row = session.scalars(select(Entry).where(Entry.cid == certified[2])).one()
        document = json.loads(json.dumps(row.document))
        first = next(iter(document["constituency"]["votes"]))
        document["constituency"]["votes"][first] += 50
        session.execute(update(Entry).where(Entry.cid == certified[2]).values(document=document))
    database.close()
    state = AppState.open(api_settings)  # the server restarts and serves from the edited row
    with TestClient(create_app(app_state=state)) as client:
        report = audit(client, state).verify_all()
    state.close()
    assert "published certified result" in {m.what for m in report.mismatches}
    assert any(CONSTITUENCY in m.where and "+50" not in str(m) for m in report.mismatches)
