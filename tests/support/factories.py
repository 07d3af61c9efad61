"""Builders for valid tallies, shared by tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from ledger.core.cid import CID, RAW
from ledger.election import Election
from wallets.tally_client import sign_tally

if TYPE_CHECKING:
    from ledger.intake.service import Ledger

VOLUNTEER_KEY = bytes.fromhex("0101010101010101010101010101010101010101010101010101010101010101")
OTHER_KEY = bytes.fromhex("0202020202020202020202020202020202020202020202020202020202020202")
BOARD = CID.of(RAW, b"board")
FORM = CID.of(RAW, b"form")
STAND_IN_EXIF: dict[str, Any] = {
    "taken_at": "2023-05-14T17:40:00+07:00",
    "taken_at_offset": "+07:00",
    "gps": {"lat": 13.75, "lon": 100.5},
}
"""What the stand-in photos say of themselves: taken in the count window, in Bangkok."""
L = TypeVar("L", bound="Ledger")


def stand_in_photos(ledger: L, *contents: bytes) -> L:
    """Make ``BOARD`` and ``FORM`` (or the files with these ``contents``) uploaded photos of
    ``ledger``: their blocks and their rows in the photo index, which a tally's photo links
    must name. Stand-ins for tests of other things: the rows say image/jpeg with a time and
    place (``STAND_IN_EXIF``), the bytes are a word (tests/intake/test_photos.py has real photos)."""
    from ledger.intake.photos import PhotoInfo

    infos = []
    for data in contents or (b"board", b"form"):
        cid = CID.of(RAW, data)
        ledger.content.put_block(cid, data)
        info = PhotoInfo(
            cid=cid,
            size=len(data),
            media_type="image/jpeg",
            taken_at=STAND_IN_EXIF["taken_at"],
            gps=dict(STAND_IN_EXIF["gps"]),
            exif=dict(STAND_IN_EXIF),
        )
        infos.append((info, None))
    ledger.record_photos(infos)
    return ledger


def tally_json(
    election: Election, unit_id: str = "BKK_1-0001", *, submission_id: str = "org7-vol42-0001", cast: int = 400
) -> dict[str, Any]:
    """An unsigned, arithmetically correct tally for ``unit_id``."""
    unit = election.polling_unit(unit_id)
    candidates = sorted(election.constituency(unit.constituency_id).candidates)
    parties = sorted(election.parties_by_number)
    return {
        "polling_unit": unit.id,
        "submission_id": submission_id,
        "submitted_at": "2023-05-14T10:31:07Z",
        "registered_voters": unit.registered_voters,
        "constituency": {
            "ballots_cast": cast,
            "votes": {str(candidates[0]): cast - 130, str(candidates[1]): 100},
            "invalid": 20,
            "no_vote": 10,
        },
        "party_list": {
            "ballots_cast": cast,
            "votes": {str(parties[0]): cast - 140, str(parties[1]): 100},
            "invalid": 25,
            "no_vote": 15,
        },
        "photos": {"tally_board": str(BOARD), "form_5_18": str(FORM)},
    }


def signed_tally(election: Election, unit_id: str = "BKK_1-0001", *, key: bytes = VOLUNTEER_KEY, **kwargs: Any) -> dict[str, Any]:
    return sign_tally(tally_json(election, unit_id, **kwargs), key, election)
