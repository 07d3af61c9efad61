"""The authority state machine (``tally-authority-v1``): who held which role when."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.authority import AUTHORITY_FORMAT, Authority, AuthorityRefused
from ledger.core.signing import address_from_private_key

ADMIN_KEYS = {address_from_private_key(bytes([n]) * 32): bytes([n]) * 32 for n in (1, 2, 3)}
ADMINS = sorted(ADMIN_KEYS)
HEAD = address_from_private_key(bytes([4]) * 32)
VOLUNTEER = address_from_private_key(bytes([5]) * 32)
WAR_ROOM = address_from_private_key(bytes([6]) * 32)
LEDGER_KEY = address_from_private_key(bytes([7]) * 32)
STRANGER = address_from_private_key(bytes([8]) * 32)
UNITS = {"BKK_1-0001": "BKK_1", "BKK_1-0002": "BKK_1", "CMI_2-0001": "CMI_2"}
_ids = itertools.count()
GENESIS_VECTOR_CID = "bafyreid4hfua26omdqufwankurx6ncylnvz7nf55w2lvfl6f65io3ti4em"
"""Computed once when the format was made (dag-cbor, sha2-256); a regression vector."""


def entry(action: str, signer: str = ADMINS[0], **fields: Any) -> dict[str, Any]:
    return {
        "format": AUTHORITY_FORMAT,
        "election": "th-2566",
        "grant_id": f"grant-{next(_ids):06d}",
        "granted_at": "2023-05-14T09:00:00Z",
        "signer": signer,
        "action": action,
        **fields,
    }


def genesis(threshold: int = 2) -> dict[str, Any]:
    return entry("genesis", subject="admins", admins=ADMINS, threshold=threshold)


def grant(kind: str, subject: str, signer: str = ADMINS[0], **fields: Any) -> dict[str, Any]:
    return entry("grant", signer, kind=kind, subject=subject, **fields)


def revoke(kind: str, subject: str, **fields: Any) -> dict[str, Any]:
    return entry("revoke", kind=kind, subject=subject, **fields)


def night() -> Authority:
    state = Authority(constituency_of=UNITS.get)
    for number, e in enumerate(
        [
            genesis(),
            grant("organisation", "ilaw"),
            grant("member", HEAD, organisation="ilaw", role="constituency_head", level=2),
            grant("scope", HEAD, constituencies=["BKK_1"]),
            grant("member", VOLUNTEER, organisation="ilaw", role="volunteer", level=1),
            grant("assignment", VOLUNTEER, units=["BKK_1-0001"]),
            grant("member", WAR_ROOM, organisation="ilaw", role="war_room", level=3),
            grant("service_key", "auto_accept", address=LEDGER_KEY),
        ]
    ):
        state.apply(f"cid-{number}", e)
    return state


def test_a_night_answers_who_may_report_and_decide() -> None:
    state = night()
    assert state.genesis == "cid-0"
    assert state.may_report(VOLUNTEER, "BKK_1-0001") is None
    assert "not assigned to unit BKK_1-0002" in (state.may_report(VOLUNTEER, "BKK_1-0002") or "")
    assert "not a member" in (state.may_report(STRANGER, "BKK_1-0001") or "")
    assert state.may_report(HEAD, "BKK_1-0002") is None  # a head's corrected tally, in their constituency
    assert "not the head of constituency CMI_2" in (state.may_report(HEAD, "CMI_2-0001") or "")
    assert state.may_report(WAR_ROOM, "CMI_2-0001") is None
    state.apply("p1", grant("policy", "open_reporting", enabled=True))
    assert state.may_report(STRANGER, "BKK_1-0001") is None  # open reporting: anyone who is no member
    assert "not assigned to unit BKK_1-0002" in (state.may_report(VOLUNTEER, "BKK_1-0002") or "")  # members: their units
    state.apply("p2", revoke("policy", "open_reporting"))
    assert "not a member" in (state.may_report(STRANGER, "BKK_1-0001") or "")
    assert state.may_decide(HEAD, "constituency_head", "BKK_1-0002") is None
    assert "not the head of constituency CMI_2" in (state.may_decide(HEAD, "constituency_head", "CMI_2-0001") or "")
    assert state.may_decide(WAR_ROOM, "war_room", "CMI_2") is None
    assert "does not hold the role war_room" in (state.may_decide(HEAD, "war_room", "BKK_1-0001") or "")
    assert "does not hold the role war_room" in (state.may_decide(STRANGER, "war_room", "BKK_1-0001") or "")
    assert state.may_decide(LEDGER_KEY, "ledger", "BKK_1-0001") is None
    assert "automatic-acceptance key" in (state.may_decide(STRANGER, "ledger", "BKK_1-0001") or "")
    assert state.is_service_key("auto_accept", LEDGER_KEY) and not state.is_service_key("receipt", LEDGER_KEY)


def test_an_api_key_is_granted_by_its_hash_with_its_role_and_scope_until_revoked() -> None:
    state = night()
    state.apply("k1", grant("api_key", "ab" * 32, role="coordinator", scope={"organisations": ["ilaw"]}))
    state.apply("k2", grant("api_key", "cd" * 32, role="newsroom", scope=None))
    assert state.api_keys == {
        "ab" * 32: ("coordinator", (("organisations", frozenset({"ilaw"})),)),
        "cd" * 32: ("newsroom", None),
    }
    state.apply("k3", revoke("api_key", "ab" * 32))
    assert set(state.api_keys) == {"cd" * 32}


def test_heads_and_the_war_room_may_belong_to_no_organisation() -> None:
    state = night()
    state.apply("n1", grant("member", STRANGER, organisation=None, role="war_room", level=3))
    assert state.members[STRANGER].organisation is None and state.members[STRANGER].level == 3
    assert state.may_decide(STRANGER, "war_room", "BKK_1") is None
    state.apply("n2", revoke("organisation", "ilaw"))
    assert state.may_decide(STRANGER, "war_room", "BKK_1") is None  # no organisation to lose
    assert "not registered" in (state.may_decide(WAR_ROOM, "war_room", "BKK_1") or "")


def test_authority_holds_from_its_grant_until_its_revocation() -> None:
    state = night()
    state.apply("r1", revoke("scope", HEAD, constituencies=["BKK_1"]))
    assert "not the head" in (state.may_decide(HEAD, "constituency_head", "BKK_1-0001") or "")
    state.apply("r2", revoke("member", VOLUNTEER))
    assert "not a member" in (state.may_report(VOLUNTEER, "BKK_1-0001") or "")
    state.apply("r2b", grant("member", VOLUNTEER, organisation="ilaw", role="volunteer", level=1))
    assert "not assigned" in (state.may_report(VOLUNTEER, "BKK_1-0001") or "")  # granted again, with no units
    state.apply("r3", revoke("organisation", "ilaw"))
    assert "not registered" in (state.may_decide(WAR_ROOM, "war_room", "BKK_1") or "")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (grant("organisation", "ilaw", signer=STRANGER), "is not an admin"),
        (grant("member", STRANGER, organisation="nobody", role="volunteer", level=1), "not registered"),
        (grant("member", STRANGER, organisation="ilaw", role="admin", level=1), "unknown role"),
        (grant("member", STRANGER, organisation="ilaw", role="war_room", level=1), "at level 3"),
        (grant("member", STRANGER.lower(), organisation="ilaw", role="volunteer", level=1), "EIP-55 checksum form"),
        (grant("member", STRANGER, organisation=None, role="volunteer", level=1), "belongs to an organisation"),
        (grant("member", STRANGER, organisation="ilaw", role="coordinator", level=1), "unknown role"),
        (grant("scope", VOLUNTEER, constituencies=["BKK_1"]), "is not a constituency head"),
        (grant("assignment", VOLUNTEER, units=["XXX_9-0001"]), "unknown polling unit"),
        (grant("assignment", VOLUNTEER, units=[]), "non-empty list"),
        (grant("service_key", "minting", address=LEDGER_KEY), "unknown service key"),
        (grant("api_key", "ABC", role="newsroom", scope=None), "SHA-256"),
        (grant("api_key", "ab" * 32, role="newsroom", scope=["BKK_1"]), "a map of"),
        (grant("api_key", "ab" * 32, role="newsroom", scope={"districts": ["x"]}), "a map of"),
        (grant("api_key", "ab" * 32, role="newsroom", scope={"constituencies": []}), "non-empty list"),
        (grant("cabinet", "ilaw"), "unknown kind"),
        (grant("member", STRANGER, organisation=["ilaw"], role="volunteer", level=1), "not registered"),  # no TypeError
        (grant("member", STRANGER, organisation="ilaw", role=["volunteer"], level=1), "unknown role"),
        (grant("policy", "anything_goes", enabled=True), "unknown policy"),
        (grant("policy", "open_reporting", enabled="yes"), "true or false"),
        (revoke("member", STRANGER), "nothing to revoke"),
        (revoke("assignment", VOLUNTEER, units=["BKK_1-0002"]), "does not hold BKK_1-0002"),
        (genesis(), "already has its genesis"),
        (entry("promote"), "unknown action"),
        ({**grant("organisation", "x"), "format": "tally-decision-v1"}, "not a tally-authority-v1 entry"),
        ({**grant("organisation", "x"), "grant_id": "short"}, "grant_id"),
    ],
)
def test_entries_the_rules_forbid_are_refused_and_change_nothing(bad: dict[str, Any], message: str) -> None:
    state = night()
    before = (dict(state.members), {k: set(v) for k, v in state.assignments.items()}, set(state.organisations))
    with pytest.raises(AuthorityRefused, match=message):
        state.check(bad)
    with pytest.raises(AuthorityRefused, match=message):
        state.apply("bad", bad)
    assert (dict(state.members), {k: set(v) for k, v in state.assignments.items()}, set(state.organisations)) == before


def test_the_log_begins_with_a_genesis_signed_by_one_of_its_admins() -> None:
    state = Authority(constituency_of=UNITS.get)
    with pytest.raises(AuthorityRefused, match="must begin with its genesis"):
        state.apply("x", grant("organisation", "ilaw"))
    with pytest.raises(AuthorityRefused, match="signed by one of the admins it names"):
        state.apply("x", entry("genesis", STRANGER, subject="admins", admins=ADMINS, threshold=1))
    with pytest.raises(AuthorityRefused, match="sorted and without repeats"):
        state.apply("x", entry("genesis", subject="admins", admins=ADMINS[::-1], threshold=1))
    with pytest.raises(AuthorityRefused, match="threshold must be a whole number from 1 to 3"):
        state.apply("x", entry("genesis", subject="admins", admins=ADMINS, threshold=4))


def test_a_grant_id_is_used_once() -> None:
    state = night()
    again = grant("organisation", "anfrel")
    state.apply("a", again)
    with pytest.raises(AuthorityRefused, match="already in the authority log"):
        state.apply("b", again)


def test_a_change_of_admins_takes_effect_at_the_threshold_of_distinct_signatures() -> None:
    state = night()
    new = sorted([ADMINS[0], STRANGER])
    state.apply("p1", entry("admins", ADMINS[0], subject="admins", admins=new, threshold=1))
    assert state.admins == frozenset(ADMINS)  # one of two signatures
    with pytest.raises(AuthorityRefused, match="already signed this change"):
        state.apply("p1b", entry("admins", ADMINS[0], subject="admins", admins=new, threshold=1))
    with pytest.raises(AuthorityRefused, match="is not an admin"):
        state.apply("p2", entry("admins", STRANGER, subject="admins", admins=new, threshold=1))
    state.apply("p3", entry("admins", ADMINS[2], subject="admins", admins=new, threshold=1))
    assert state.admins == frozenset(new) and state.threshold == 1
    state.apply("g", grant("organisation", "anfrel", signer=STRANGER))
    with pytest.raises(AuthorityRefused, match="is not an admin"):
        state.apply("h", grant("organisation", "other", signer=ADMINS[1]))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["grant", "revoke"]),
            st.sampled_from([HEAD, VOLUNTEER, STRANGER]),
            st.sampled_from(["member", "assignment", "scope"]),
            st.sampled_from(["volunteer", "constituency_head"]),
            st.sampled_from(sorted(UNITS)),
        ),
        max_size=25,
    )
)
def test_check_agrees_with_apply_and_a_refusal_changes_nothing(steps: list[tuple[str, str, str, str, str]]) -> None:
    """Any sequence: ``check`` refuses exactly what ``apply`` refuses, and replaying the
    accepted entries into a fresh state gives the same answers."""
    state, accepted = night(), []
    for action, who, kind, role, unit in steps:
        fields: dict[str, Any] = {}
        if kind == "member" and action == "grant":
            fields = {"organisation": "ilaw", "role": role, "level": 1 if role == "volunteer" else 2}
        elif kind == "assignment":
            fields = {"units": [unit]}
        elif kind == "scope":
            fields = {"constituencies": [UNITS[unit]]}
        e = entry(action, kind=kind, subject=who, **fields)
        try:
            state.check(e)
        except AuthorityRefused:
            with pytest.raises(AuthorityRefused):
                state.apply("x", e)
            continue
        state.apply("x", e)
        accepted.append(e)
    again = night()
    for e in accepted:
        again.apply("x", e)
    for who, unit in itertools.product([HEAD, VOLUNTEER, STRANGER], sorted(UNITS)):
        assert again.may_report(who, unit) == state.may_report(who, unit)
        assert again.may_decide(who, "constituency_head", unit) == state.may_decide(who, "constituency_head", unit)


def test_an_authority_entry_is_signed_and_encoded_like_every_ledger_entry() -> None:
    """The EIP-712 mapping (subject, grant_id, granted_at, signer) and a fixed vector: the
    CID of this signed genesis must never change, since anchored logs begin with one."""
    from ledger.core.record import encode_entry, entry_fields, sign_entry, verify_entry_signature
    from ledger.errors import InvalidSignature

    node = {
        "format": AUTHORITY_FORMAT,
        "election": "th-2566",
        "grant_id": "genesis-0001",
        "granted_at": "2023-05-14T00:00:00Z",
        "signer": ADMINS[0],
        "action": "genesis",
        "subject": "admins",
        "admins": ADMINS,
        "threshold": 2,
    }
    signed = sign_entry(node, ADMIN_KEYS[ADMINS[0]])
    fields = entry_fields(signed)
    assert (fields.subject, fields.entry_id, fields.created_at, fields.signer) == (
        "admins",
        "genesis-0001",
        "2023-05-14T00:00:00Z",
        ADMINS[0],
    )
    verify_entry_signature(signed)
    with pytest.raises(InvalidSignature):
        verify_entry_signature({**signed, "threshold": 1})
    cid, _ = encode_entry(signed)
    assert str(cid) == GENESIS_VECTOR_CID
    Authority(constituency_of=UNITS.get).apply(str(cid), signed)
