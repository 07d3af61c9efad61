"""Test helpers and fixtures, moved out of the test module that first needed them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from ledger.content.local import LocalBlockStore
from ledger.core.cid import CID, RAW
from ledger.election import Election
from ledger.intake.service import Ledger
from ledger.people.authority import AuthorityLog
from ledger.results.aggregates import Aggregates
from ledger.review.service import ReviewService
from ledger.store import Database
from tests.support.factories import stand_in_photos
from tests.support.intake import RECEIPT_KEY, Clock
from wallets.tally_client import sign_decision, sign_tally

CONSTITUENCY = "MSN_1"


VERIFIER_KEY = bytes.fromhex("04" * 32)
AUTHORITY_KEY = bytes.fromhex("05" * 32)
"""The admin key of the test ledger's authority log (``ledger.people.authority``)."""


def key(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def address(name: str) -> str:
    from ledger.core.signing import address_from_private_key

    return address_from_private_key(key(name))


def authority_log(ledger: Ledger, clock: Any) -> AuthorityLog:
    """The authority log a serving ledger keeps, with the test keys, loaded (its genesis written)."""
    from ledger.core.signing import address_from_private_key

    log = AuthorityLog(
        ledger=ledger,
        admin_key=AUTHORITY_KEY,
        service_keys={"receipt": address_from_private_key(RECEIPT_KEY), "auto_accept": address_from_private_key(VERIFIER_KEY)},
        clock=clock,
    )
    log.load()
    return log


@pytest.fixture
def service(database: Database, tmp_path: Path, election: Election) -> ReviewService:
    content = LocalBlockStore(tmp_path / "blocks")
    clock = Clock()
    ledger = Ledger(
        database=database,
        content=content,
        election=election,
        receipt_key=RECEIPT_KEY,
        batch_max_records=50,
        batch_max_age_seconds=60,
        clock=clock,
    )
    aggregates = Aggregates(database=database, election=election)
    authority = authority_log(ledger, clock)
    review = ReviewService(ledger=ledger, aggregates=aggregates, verifier_key=VERIFIER_KEY, clock=clock, authority=authority)
    units = [u.id for u in election.polling_units(CONSTITUENCY)][:5]
    for org in ("org-a", "org-b", "org-c"):
        review.create_organisation(organisation_id=org, name=org.upper(), kind="civil_society")
        review.register_member(
            address=address(org), level=1, name=f"volunteer of {org}", organisation_id=org, contact="+66 800 000 000"
        )
        review.assign(address=address(org), areas=units, organisation_id=org)
    review.register_member(address=address("head"), level=2, name="head", organisation_id="org-a")
    review.assign(address=address("head"), areas=[CONSTITUENCY])
    review.register_member(address=address("other-head"), level=2, name="other head", organisation_id="org-b")
    review.assign(address=address("other-head"), areas=["BKK_1"])
    review.register_member(address=address("war-room"), level=3, name="war room", organisation_id=None)
    return review


def photo(service: ReviewService, label: str) -> str:
    data = f"photo {label}".encode()
    stand_in_photos(service.ledger, data)  # stored and indexed, taken in the count window
    return str(CID.of(RAW, data))


def tally(
    service: ReviewService,
    org: str,
    unit: str,
    *,
    c1: int = 200,
    photos: tuple[str, str] | None = None,
    inconsistent: bool = False,
    sid: str = "",
    signer: str | None = None,
    corrects: list[str] | None = None,
) -> dict[str, Any]:
    election = service.election
    registered = election.polling_unit(unit).registered_voters
    document: dict[str, Any] = {
        "polling_unit": unit,
        "submission_id": sid or f"{org}-{unit}",
        "submitted_at": "2023-05-14T11:00:00Z",
        "registered_voters": registered,
        "constituency": {
            "ballots_cast": c1 + 110,
            "votes": {"1": c1, "2": 100},
            "invalid": 6 + (3 if inconsistent else 0),
            "no_vote": 4,
        },
        "party_list": {"ballots_cast": 310, "votes": {"31": 200, "29": 100}, "invalid": 5, "no_vote": 5},
        "photos": {
            "tally_board": (photos or (photo(service, f"{org}{unit}b"), ""))[0],
            "form_5_18": (photos or ("", photo(service, f"{org}{unit}f")))[1],
        },
    }
    if inconsistent:
        document["form_inconsistent"] = True
    if corrects:
        document["corrects"] = corrects
    return sign_tally(document, key(signer or org), election)


def decide(service: ReviewService, who: str, action: str, subject: str, **fields: Any) -> str:
    role = {"head": "constituency_head", "other-head": "constituency_head", "war-room": "war_room"}[who]
    decision = {
        "decision_id": f"{who}-{action}-{subject}-{fields.pop('n', 0)}",
        "decided_at": "2023-05-14T12:00:00Z",
        "role": role,
        "action": action,
        "subject": subject,
        **fields,
    }
    accepted = service.decide(sign_decision(decision, key(who), service.election), signed_in_as=address(who))
    return str(accepted.receipt["record_cid"])
