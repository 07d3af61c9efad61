"""The serving ledger's authority log (``ledger.people.authority``): every registration and
assignment is also a signed ``tally-authority-v1`` entry, and the state rebuilt from the
stored entries is the state the server answers with."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.core.authority import AUTHORITY_FORMAT
from ledger.core.record import verify_entry_signature
from ledger.core.signing import address_from_private_key
from ledger.errors import AlreadyExists, Forbidden, InvalidTally
from ledger.people.authority import AUTHORITY_KIND
from ledger.people.keys import hash_api_key
from ledger.people.service import AccessService
from ledger.people.sessions import SessionSigner
from ledger.store import entries
from tests.support.intake import RECEIPT_KEY
from tests.support.review import AUTHORITY_KEY, CONSTITUENCY, VERIFIER_KEY, address, authority_log
from wallets.authority_client import sign_authority_entry


def stored(service: Any) -> list[dict[str, Any]]:
    return [document for _, _, document in entries.kind_documents_after(service.database, AUTHORITY_KIND, 0)]


def test_the_registrations_of_a_night_are_signed_entries_of_the_log(service: Any) -> None:
    log = stored(service)
    assert log[0]["action"] == "genesis" and log[0]["admins"] == [address_from_private_key(AUTHORITY_KEY)]
    assert {(e["subject"], e["address"]) for e in log if e.get("kind") == "service_key"} == {
        ("receipt", address_from_private_key(RECEIPT_KEY)),
        ("auto_accept", address_from_private_key(VERIFIER_KEY)),
    }
    assert [e["subject"] for e in log if e.get("kind") == "organisation"] == ["org-a", "org-b", "org-c"]
    members = {e["subject"]: (e["role"], e["organisation"]) for e in log if e.get("kind") == "member"}
    assert members[address("head")] == ("constituency_head", "org-a")
    assert members[address("war-room")] == ("war_room", None)
    assert [e["constituencies"] for e in log if e.get("kind") == "scope" and e["subject"] == address("head")] == [[CONSTITUENCY]]
    assert all(e["format"] == AUTHORITY_FORMAT and e["signer"] == address_from_private_key(AUTHORITY_KEY) for e in log)
    row = entries.get_entry(service.database, entries.kind_documents_after(service.database, AUTHORITY_KIND, 0)[0][1])
    assert row is not None and row.kind == AUTHORITY_KIND
    verify_entry_signature(_node(service, row.cid))  # the stored block is the signed entry


def _node(service: Any, cid: str) -> dict[str, Any]:
    from ledger.core import dagcbor
    from ledger.core.cid import CID

    return dagcbor.decode(service.ledger.content.get_block(CID.parse(cid)))  # type: ignore[no-any-return]


def test_a_restarted_ledger_rebuilds_the_same_state_and_writes_no_second_genesis(service: Any) -> None:
    before = service.people.authority.state
    again = authority_log(service.ledger, service.clock)
    assert sum(1 for e in stored(service) if e["action"] == "genesis") == 1
    for name in ("admins", "threshold", "genesis", "organisations", "members", "scopes", "assignments", "service_keys"):
        assert getattr(again.state, name) == getattr(before, name), name


def test_loading_again_applies_only_what_another_process_wrote(service: Any) -> None:
    log = service.people.authority
    other = authority_log(service.ledger, service.clock)  # another process of the same ledger
    with other.grant_organisation("org-late"):
        pass
    assert log.load() == 1 and "org-late" in log.state.organisations
    assert log.load() == 0


def test_only_the_areas_the_database_added_are_granted(service: Any) -> None:
    count = len(stored(service))
    units = [u.id for u in service.election.polling_units(CONSTITUENCY)]
    assert service.assign(address=address("org-a"), areas=units[:5], organisation_id="org-a") == []
    assert len(stored(service)) == count  # nothing changed, no entry
    assert service.assign(address=address("org-a"), areas=units[4:7], organisation_id="org-a") == units[5:7]
    assert stored(service)[-1]["units"] == units[5:7]
    assert set(units[:7]) <= service.people.authority.state.assignments[address("org-a")]


def test_a_refused_registration_writes_no_entry(service: Any) -> None:
    count = len(stored(service))
    with pytest.raises(AlreadyExists):
        service.create_organisation(organisation_id="org-a", name="again", kind="civil_society")
    with pytest.raises(AlreadyExists):
        service.register_member(address=address("head"), level=2, name="head", organisation_id="org-a")
    assert len(stored(service)) == count


def test_the_log_refuses_what_its_rules_refuse_before_the_database_is_written(service: Any) -> None:
    count = len(stored(service))
    with (
        pytest.raises(Forbidden, match="not registered"),
        service.people.authority.grant_member(address("newcomer"), level=1, organisation_id="no-such-org"),
    ):
        pytest.fail("the block runs only when the log allows the entry")
    assert len(stored(service)) == count


def test_api_keys_are_stated_by_their_hash_role_and_scope_and_revoked_with_them(service: Any) -> None:
    access = AccessService(
        database=service.database,
        election=service.election,
        sessions=SessionSigner(b"s" * 32, lifetime_seconds=60),
        authority=service.people.authority,
    )
    row, token = access.create_principal(role="coordinator", name="Khun Somchai", scope={"organisations": ["org-a"]})
    entry = stored(service)[-1]
    assert (entry["kind"], entry["subject"], entry["role"], entry["scope"]) == (
        "api_key",
        hash_api_key(token),
        "coordinator",
        {"organisations": ["org-a"]},
    )
    assert "Somchai" not in str(stored(service))  # names stay in the database
    access.revoke_principal(row.id)
    assert (stored(service)[-1]["action"], stored(service)[-1]["subject"]) == ("revoke", hash_api_key(token))
    assert hash_api_key(token) not in service.people.authority.state.api_keys
    access.revoke_principal(row.id)  # revoked again: the log holds nothing more to revoke
    assert stored(service)[-1]["action"] == "revoke" and len([e for e in stored(service) if e.get("kind") == "api_key"]) == 2


def test_revoking_a_member_ends_their_role_in_the_log(service: Any) -> None:
    access = AccessService(
        database=service.database,
        election=service.election,
        sessions=SessionSigner(b"s" * 32, lifetime_seconds=60),
        authority=service.people.authority,
    )
    access.revoke_volunteer(address("head"))
    assert address("head") not in service.people.authority.state.members
    assert "not a member" in (service.people.authority.may_decide(address("head"), "constituency_head", CONSTITUENCY) or "")


def test_the_authority_feed_carries_the_log_and_the_results_feed_does_not(service: Any) -> None:
    log, cursor = service.ledger.changes(after=0, limit=1000, view="authority")
    assert [item["document"] for item in log] == stored(service)
    assert cursor == log[-1]["cursor"] and service.ledger.changes(after=cursor, limit=10, view="authority") == ([], cursor)
    assert {item["kind"] for item in log} == {AUTHORITY_KIND}
    unofficial, _ = service.ledger.changes(after=0, limit=1000)
    assert all(item["kind"] != AUTHORITY_KIND for item in unofficial)


def test_a_ledger_registered_before_its_log_states_its_people_after_the_genesis(
    database: Any, tmp_path: Any, election: Any
) -> None:
    from ledger.content.local import LocalBlockStore
    from ledger.intake.service import Ledger
    from ledger.results.aggregates import Aggregates
    from ledger.review.service import ReviewService
    from tests.support.intake import Clock

    clock = Clock()
    ledger = Ledger(
        database=database,
        content=LocalBlockStore(tmp_path / "b"),
        election=election,
        receipt_key=RECEIPT_KEY,
        batch_max_records=50,
        batch_max_age_seconds=60,
        clock=clock,
    )
    before = ReviewService(ledger=ledger, aggregates=Aggregates(database=database, election=election), verifier_key=VERIFIER_KEY)
    before.create_organisation(organisation_id="org-a", name="A", kind="civil_society")
    before.register_member(address=address("v"), level=1, name="v", organisation_id="org-a")
    before.assign(address=address("v"), areas=["BKK_1-0001", "BKK_1-0002"], organisation_id="org-a")
    before.register_member(address=address("h"), level=2, name="h", organisation_id=None)
    before.assign(address=address("h"), areas=["BKK_1"])
    log = authority_log(ledger, clock)  # the upgrade: the first start with an authority log
    kinds = [(e["action"], e.get("kind")) for e in [d for _, _, d in entries.kind_documents_after(database, AUTHORITY_KIND, 0)]]
    assert kinds[0] == ("genesis", None) and ("grant", "assignment") in kinds and ("grant", "scope") in kinds
    assert log.may_report(address("v"), "BKK_1-0002") is None
    assert log.may_decide(address("h"), "constituency_head", "BKK_1-0003") is None


def test_admins_sign_elsewhere_and_a_change_of_admins_takes_the_rule_in_force(service: Any) -> None:
    log = service.people.authority
    election = service.election.id
    keys = [bytes([n]) * 32 for n in (11, 12, 13)]
    board = sorted(address_from_private_key(k) for k in keys)
    to_board = {"action": "admins", "subject": "admins", "admins": board, "threshold": 2}
    log.submit(sign_authority_entry(to_board, AUTHORITY_KEY, election=election))  # 1 of 1: the server's key hands over
    assert log.state.admins == frozenset(board) and log.state.threshold == 2
    with pytest.raises(Forbidden, match="is not an admin"):
        service.create_organisation(organisation_id="org-late", name="late", kind="civil_society")  # no longer its to grant
    grant = {"action": "grant", "kind": "organisation", "subject": "org-late"}
    accepted = log.submit(sign_authority_entry(grant, keys[0], election=election))  # one admin grants
    assert accepted.created and "org-late" in log.state.organisations
    back = {"action": "admins", "subject": "admins", "admins": [log.admin], "threshold": 1}
    log.submit(sign_authority_entry(back, keys[1], election=election))
    assert log.state.admins == frozenset(board)  # 1 of the 2 it takes
    with pytest.raises(Forbidden, match="already signed this change"):
        log.submit(sign_authority_entry(back, keys[1], election=election))
    log.submit(sign_authority_entry(back, keys[2], election=election))
    assert log.state.admins == frozenset({log.admin})
    again = authority_log(service.ledger, service.clock)  # and a restart agrees
    assert again.state.admins == log.state.admins and "org-late" in again.state.organisations


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"signature": "0x" + "00" * 65}, "signature"),
        ({"election": "th-2570"}, "election"),
        ({"granted_at": "yesterday"}, "granted_at"),
        ({"name": "Khun Somchai"}, "name"),
        ({"subject": "org-x"}, "signature"),  # altered after signing
    ],
)
def test_an_entry_signed_elsewhere_is_checked_before_the_rules(service: Any, change: dict[str, Any], path: str) -> None:
    entry = sign_authority_entry(
        {"action": "grant", "kind": "organisation", "subject": "org-y"}, AUTHORITY_KEY, election=service.election.id
    )
    with pytest.raises(InvalidTally) as refused:
        service.people.authority.submit({**entry, **change})
    assert path in [error.path[0] for error in refused.value.errors]
