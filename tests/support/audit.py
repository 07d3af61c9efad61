"""Test helpers and fixtures, moved out of the test module that first needed them."""

from __future__ import annotations

import pytest

from ledger.audit import Auditor, StoreSource
from ledger.chain.anvil import AnvilNode
from ledger.election import Election
from ledger.sealing.anchoring import AnchorWorker
from ledger.sealing.batches import Batcher
from ledger.settings import Settings
from tests.support.chain import open_client
from tests.support.review import CONSTITUENCY, decide, tally


@pytest.fixture
def night(review_service, settings: Settings, anvil: AnvilNode, election: Election):  # type: ignore[no-untyped-def]
    """A small certified night in one constituency, sealed and anchored."""
    service = review_service
    units = [u.id for u in election.polling_units(CONSTITUENCY)]
    for unit in units[:3]:
        service.submit_report(tally(service, "org-a", unit))
        service.submit_report(tally(service, "org-b", unit))
    for unit in units[:3]:
        decide(service, "war-room", "certify", unit, record=service.replay.unit(unit).accepted)
    Batcher(service.ledger).seal_due(force=True)
    client = open_client(settings)
    AnchorWorker(database=service.database, content=service.ledger.content, client=client).drain()
    return service, client


def auditor(service, client, content=None) -> Auditor:  # type: ignore[no-untyped-def]
    return Auditor(chain=client, content=content or StoreSource(service.ledger.content, "blocks"), election=service.election)


@pytest.fixture
def review_service(service):  # type: ignore[no-untyped-def]
    """The review service of ``tests.support.review``, under the name the audit fixtures use."""
    return service
