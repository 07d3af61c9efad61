"""Builders for valid tallies, shared by tests."""

from __future__ import annotations

from typing import Any

from ledger.core.cid import CID, RAW
from ledger.election import Election
from wallets.tally_client import sign_tally

VOLUNTEER_KEY = bytes.fromhex("0101010101010101010101010101010101010101010101010101010101010101")
OTHER_KEY = bytes.fromhex("0202020202020202020202020202020202020202020202020202020202020202")
BOARD = CID.of(RAW, b"board")
FORM = CID.of(RAW, b"form")


def tally_json(election: Election, unit_id: str = "BKK_1-0001", *, submission_id: str = "org7-vol42-0001", cast: int = 400) -> dict[str, Any]:
    """An unsigned, arithmetically correct tally for ``unit_id``."""
    unit = election.polling_unit(unit_id)
    candidates = sorted(election.constituency(unit.constituency_id).candidates)
    parties = sorted(election.parties_by_number)
    return {
        "polling_unit": unit.id,
        "submission_id": submission_id,
        "submitted_at": "2023-05-14T10:31:07Z",
        "registered_voters": unit.registered_voters,
        "constituency": {"ballots_cast": cast, "votes": {str(candidates[0]): cast - 130, str(candidates[1]): 100}, "invalid": 20, "no_vote": 10},
        "party_list": {"ballots_cast": cast, "votes": {str(parties[0]): cast - 140, str(parties[1]): 100}, "invalid": 25, "no_vote": 15},
        "photos": {"tally_board": str(BOARD), "form_5_18": str(FORM)},
    }


def signed_tally(election: Election, unit_id: str = "BKK_1-0001", *, key: bytes = VOLUNTEER_KEY, **kwargs: Any) -> dict[str, Any]:
    return sign_tally(tally_json(election, unit_id, **kwargs), key, election)
