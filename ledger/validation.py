"""Tally validation: a submitted JSON tally → a canonical, signed ``tally-record-v1`` node.

Pure: it needs the election definition and a way to ask whether a photo is stored.
Every problem is reported with its field path; nothing is dropped silently (unknown
fields are errors too), and all problems are reported at once, not only the first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ledger.core.cid import CID
from ledger.core.record import BALLOTS, OPTIONAL_PHOTOS, REQUIRED_PHOTOS, TALLY_FORMAT, verify_entry_signature
from ledger.core.signing import to_checksum_address
from ledger.election import Election
from ledger.errors import FieldError, InvalidCID, InvalidSignature, InvalidTally, NotFound

__all__ = ["SUBMISSION_ID_PATTERN", "validate_tally"]

SUBMISSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_TIME_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?Z$")
_TOP_FIELDS = {
    "format", "election", "polling_unit", "submission_id", "submitted_at", "submitter",
    "registered_voters", "constituency", "party_list", "photos", "signature", "form_inconsistent",
}
_BALLOT_FIELDS = {"ballots_cast", "votes", "invalid", "no_vote"}
_MAX_COUNT = 10_000_000


class _Errors:
    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, path: tuple[str | int, ...], message: str) -> None:
        self.items.append(FieldError(path, message))


def _count(errors: _Errors, path: tuple[str | int, ...], value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
        errors.add(path, f"must be a whole number of ballots, got {shown}")
        return None
    if value < 0:
        errors.add(path, f"must not be negative, got {value}")
        return None
    if value > _MAX_COUNT:
        errors.add(path, f"{value} is larger than any polling unit's count ({_MAX_COUNT:,})")
        return None
    return value


def _ballot(
    errors: _Errors, name: str, raw: Any, known: set[int], noun: str, unit_voters: int, form_inconsistent: bool
) -> dict[str, object] | None:
    if not isinstance(raw, Mapping):
        errors.add((name,), "must be an object with ballots_cast, votes, invalid and no_vote")
        return None
    for extra in sorted(set(raw) - _BALLOT_FIELDS):
        errors.add((name, extra), "is not a field of a ballot count; expected ballots_cast, votes, invalid, no_vote")
    for missing in sorted(_BALLOT_FIELDS - set(raw)):
        errors.add((name, missing), "is required")
    cast = _count(errors, (name, "ballots_cast"), raw.get("ballots_cast", 0))
    invalid = _count(errors, (name, "invalid"), raw.get("invalid", 0))
    no_vote = _count(errors, (name, "no_vote"), raw.get("no_vote", 0))
    votes_raw = raw.get("votes", {})
    votes: dict[str, int] = {}
    if not isinstance(votes_raw, Mapping):
        errors.add((name, "votes"), f"must be an object mapping {noun} numbers to votes")
        votes_raw = {}
    complete = True
    for key, value in votes_raw.items():
        text = str(key)
        if not text.isdigit() or (len(text) > 1 and text.startswith("0")):
            errors.add((name, "votes", text), f"{text!r} is not a {noun} number")
            complete = False
            continue
        if int(text) not in known:
            listed = ", ".join(str(n) for n in sorted(known))
            errors.add((name, "votes", text), f"there is no {noun} number {text} on this ballot (valid: {listed})")
            complete = False
        count = _count(errors, (name, "votes", text), value)
        if count is None:
            complete = False
        else:
            votes[text] = count
    if cast is None or invalid is None or no_vote is None or not complete:
        return None
    total = sum(votes.values()) + invalid + no_vote
    if total != cast and not form_inconsistent:
        errors.add(
            (name, "ballots_cast"),
            f"votes ({sum(votes.values())}) + invalid ({invalid}) + no_vote ({no_vote}) = {total}, "
            f"which is not ballots_cast ({cast}); if the signed form itself does not add up, "
            "report it as written with form_inconsistent: true",
        )
    if cast > unit_voters:
        errors.add((name, "ballots_cast"), f"{cast} ballots cast is more than the unit's {unit_voters} registered voters")
    return {"ballots_cast": cast, "votes": votes, "invalid": invalid, "no_vote": no_vote}


def validate_tally(
    submission: Mapping[str, Any],
    *,
    election: Election,
    photo_exists: Callable[[CID], bool],
    signed: bool = True,
) -> dict[str, object]:
    """Check a submitted tally and return its canonical node, or raise ``InvalidTally``.

    With ``signed=False`` (for clients preparing a record to sign) the signature is
    neither required nor checked, and the node comes back without one.
    """
    errors = _Errors()
    if not isinstance(submission, Mapping):
        raise InvalidTally([FieldError((), "a tally must be a JSON object")])
    for extra in sorted(set(submission) - _TOP_FIELDS):
        errors.add((extra,), "is not a field of a tally record")
    optional = {"format", "election", "form_inconsistent"} | (set() if signed else {"signature"})
    for required in sorted(_TOP_FIELDS - optional - set(submission)):
        errors.add((required,), "is required")

    if submission.get("format", TALLY_FORMAT) != TALLY_FORMAT:
        errors.add(("format",), f"must be {TALLY_FORMAT!r}, got {submission.get('format')!r}")
    if submission.get("election", election.id) != election.id:
        errors.add(("election",), f"this ledger reports election {election.id!r}, got {submission.get('election')!r}")

    unit = None
    unit_id = submission.get("polling_unit")
    if "polling_unit" in submission:
        try:
            unit = election.polling_unit(str(unit_id)) if isinstance(unit_id, str) else None
            if unit is None:
                errors.add(("polling_unit",), "must be a polling unit id string like 'BKK_1-0001'")
        except NotFound as exc:
            errors.add(("polling_unit",), str(exc))

    submission_id = submission.get("submission_id")
    if "submission_id" in submission and (not isinstance(submission_id, str) or not SUBMISSION_ID_PATTERN.match(submission_id)):
        errors.add(("submission_id",), "must be 8 to 64 characters of letters, digits, '_' or '-'")
    submitted_at = submission.get("submitted_at")
    if "submitted_at" in submission and (not isinstance(submitted_at, str) or not _TIME_PATTERN.match(submitted_at)):
        errors.add(("submitted_at",), "must be a UTC time like '2023-05-14T17:05:00Z'")
    submitter = None
    if "submitter" in submission:
        try:
            submitter = to_checksum_address(submission["submitter"])
        except InvalidSignature as exc:
            errors.add(("submitter",), str(exc))

    registered = None
    if "registered_voters" in submission:
        registered = _count(errors, ("registered_voters",), submission["registered_voters"])
        if registered is not None and unit is not None and registered != unit.registered_voters:
            errors.add(("registered_voters",), f"{registered} does not match unit {unit.id}'s {unit.registered_voters} registered voters")

    form_inconsistent = submission.get("form_inconsistent", False)
    if not isinstance(form_inconsistent, bool):
        errors.add(("form_inconsistent",), "must be true or false")
        form_inconsistent = False
    ballots: dict[str, object] = {}
    if unit is not None:
        constituency = election.constituency(unit.constituency_id)
        known = {"constituency": set(constituency.candidates), "party_list": set(election.parties_by_number)}
        nouns = {"constituency": "candidate", "party_list": "party"}
        voters = min(unit.registered_voters, registered if registered is not None else unit.registered_voters)
        for name in BALLOTS:
            if name in submission:
                ballot = _ballot(errors, name, submission[name], known[name], nouns[name], voters, form_inconsistent)
                if ballot is not None:
                    ballots[name] = ballot

    photos: dict[str, CID] = {}
    raw_photos = submission.get("photos")
    if "photos" in submission:
        if not isinstance(raw_photos, Mapping):
            errors.add(("photos",), "must be an object mapping photo roles to CIDs")
        else:
            for role in sorted(set(raw_photos) - set(REQUIRED_PHOTOS) - set(OPTIONAL_PHOTOS)):
                errors.add(("photos", role), f"is not a photo role; expected {', '.join(REQUIRED_PHOTOS + OPTIONAL_PHOTOS)}")
            for role in REQUIRED_PHOTOS:
                if role not in raw_photos:
                    errors.add(("photos", role), "is required")
            for role in REQUIRED_PHOTOS + OPTIONAL_PHOTOS:
                if role not in raw_photos:
                    continue
                text = raw_photos[role]
                try:
                    cid = CID.parse(text["/"] if isinstance(text, Mapping) and "/" in text else text)
                except (InvalidCID, TypeError) as exc:
                    errors.add(("photos", role), f"is not a CID: {exc}")
                    continue
                if not photo_exists(cid):
                    errors.add(("photos", role), f"photo {cid} is not stored here; upload it first")
                    continue
                photos[role] = cid

    signature_raw = submission.get("signature")
    signature: bytes | None = None
    if "signature" in submission:
        try:
            if not isinstance(signature_raw, str) or not signature_raw.startswith("0x"):
                raise ValueError
            signature = bytes.fromhex(signature_raw[2:])
            if len(signature) != 65:
                raise ValueError
        except ValueError:
            errors.add(("signature",), "must be a 65-byte EIP-712 signature as 0x-prefixed hex")
            signature = None

    if errors.items:
        raise InvalidTally(errors.items)

    assert unit is not None and submitter is not None and registered is not None
    node: dict[str, object] = {
        "format": TALLY_FORMAT,
        "election": election.id,
        "polling_unit": unit.id,
        "submission_id": submission_id,
        "submitted_at": submitted_at,
        "submitter": submitter,
        "registered_voters": registered,
        "constituency": ballots["constituency"],
        "party_list": ballots["party_list"],
        "photos": photos,
    }
    if form_inconsistent:
        node["form_inconsistent"] = True  # present only when true, so ordinary records stay unchanged
    if not signed:
        return node
    assert signature is not None
    node["signature"] = signature
    try:
        verify_entry_signature(node)
    except InvalidSignature as exc:
        raise InvalidTally([FieldError(("signature",), str(exc))]) from None
    return node
