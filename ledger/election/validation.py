"""Tally validation: a submitted JSON tally → a canonical, signed ``tally-record-v1`` node.

Pure: it needs the election definition and a way to ask whether a photo is stored.
Every problem is reported with its field path; nothing is dropped silently (unknown
fields are errors too), and all problems are reported at once, not only the first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ledger.core.cid import CID
from ledger.core.record import BALLOTS, OPTIONAL_PHOTOS, REQUIRED_PHOTOS, TALLY_FORMAT, verify_entry_signature
from ledger.core.signing import to_checksum_address
from ledger.core.strict import ENTRY_ID_PATTERN, is_canonical_decimal
from ledger.core.timefmt import format_time_seconds
from ledger.election import Election, PollingUnit
from ledger.errors import FieldError, InvalidCID, InvalidSignature, InvalidTally, NotFound

__all__ = ["check_stored_tally", "validate_decision", "validate_tally"]

# Matched whole (``fullmatch``: "$" alone lets a trailing newline through) and ASCII only:
# in a str pattern "\d" also matches Thai digits and superscripts.
_TIME_PATTERN = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?Z", re.ASCII
)
_MAX_NUMBER_DIGITS = 4  # ballot numbers of candidates and parties; the 2023 ballots go up to 70
_TOP_FIELDS = {
    "format",
    "election",
    "polling_unit",
    "submission_id",
    "submitted_at",
    "submitter",
    "registered_voters",
    "constituency",
    "party_list",
    "photos",
    "signature",
    "form_inconsistent",
    "corrects",
}
_BALLOT_FIELDS = {"ballots_cast", "votes", "invalid", "no_vote"}
_MAX_COUNT = 10_000_000


class _Errors:
    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, path: tuple[str | int, ...], message: str) -> None:
        self.items.append(FieldError(path, message))


def _entry_id(errors: _Errors, submission: Mapping[str, Any], name: str) -> Any:
    value = submission.get(name)
    if name in submission and (not isinstance(value, str) or not ENTRY_ID_PATTERN.fullmatch(value)):
        errors.add((name,), "must be 8 to 64 characters of letters, digits, '_' or '-'")
    return value


def _utc_time(errors: _Errors, submission: Mapping[str, Any], name: str, window: tuple[datetime, datetime] | None = None) -> Any:
    """A UTC time in the record's one text form; with ``window``, within it (inclusive)."""
    value = submission.get(name)
    if name not in submission:
        return value
    if not isinstance(value, str) or not _TIME_PATTERN.fullmatch(value):
        errors.add((name,), "must be a UTC time like '2023-05-14T17:05:00Z'")
        return value
    try:
        moment = datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
    except ValueError:  # the pattern allows 31 February
        errors.add((name,), f"{value!r} is not a date on the calendar")
        return value
    if window is not None and not window[0] <= moment <= window[1]:
        opens, closes = (format_time_seconds(bound) for bound in window)
        errors.add(
            (name,), f"{value} is outside this election's reporting window, {opens} to {closes}; check the device's date and time"
        )
    return value


def _address(errors: _Errors, submission: Mapping[str, Any], name: str) -> str | None:
    if name not in submission:
        return None
    try:
        return to_checksum_address(submission[name])
    except InvalidSignature as exc:
        errors.add((name,), str(exc))
        return None


def _link(errors: _Errors, path: tuple[str | int, ...], raw: Any) -> CID | None:
    try:
        return CID.parse(raw["/"] if isinstance(raw, Mapping) and "/" in raw else raw)
    except (InvalidCID, TypeError) as exc:
        errors.add(path, f"is not a CID: {exc}")
        return None


def _signature(errors: _Errors, submission: Mapping[str, Any]) -> bytes | None:
    if "signature" not in submission:
        return None
    raw = submission["signature"]
    try:
        if not isinstance(raw, str) or not raw.startswith("0x"):
            raise ValueError
        signature = bytes.fromhex(raw[2:])
        if len(signature) != 65:
            raise ValueError
        return signature
    except ValueError:
        errors.add(("signature",), "must be a 65-byte EIP-712 signature as 0x-prefixed hex")
        return None


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
        # One spelling per number: the ASCII digits of its canonical form. A key such as
        # "๓๑" (Thai digits) or "³¹" would pass int() and then be stored as sent, a second
        # spelling of party 31 that everything downstream looks up as "31".
        text = str(key) if isinstance(key, int) and not isinstance(key, bool) and key >= 0 else key
        if not is_canonical_decimal(text, max_digits=_MAX_NUMBER_DIGITS):
            shown = text if isinstance(text, str) else repr(text)
            errors.add(
                (name, "votes", shown),
                f"{shown!r} is not a {noun} number: write it with the ASCII digits 0-9, without leading zeros, as on the ballot",
            )
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


def _envelope(errors: _Errors, submission: Mapping[str, Any], election: Election, signed: bool) -> None:
    """Unknown and missing top-level fields, then the record format and the election."""
    for extra in sorted(set(submission) - _TOP_FIELDS):
        errors.add((extra,), "is not a field of a tally record")
    optional = {"format", "election", "form_inconsistent", "corrects"} | (set() if signed else {"signature"})
    for required in sorted(_TOP_FIELDS - optional - set(submission)):
        errors.add((required,), "is required")
    if submission.get("format", TALLY_FORMAT) != TALLY_FORMAT:
        errors.add(("format",), f"must be {TALLY_FORMAT!r}, got {submission.get('format')!r}")
    if submission.get("election", election.id) != election.id:
        errors.add(("election",), f"this ledger reports election {election.id!r}, got {submission.get('election')!r}")


def _polling_unit(errors: _Errors, submission: Mapping[str, Any], election: Election) -> PollingUnit | None:
    """The unit reported on, written exactly as this ledger writes its id."""
    if "polling_unit" not in submission:
        return None
    unit_id = submission["polling_unit"]
    try:
        unit = election.polling_unit(unit_id) if isinstance(unit_id, str) else None
    except NotFound as exc:
        errors.add(("polling_unit",), str(exc))
        return None
    if unit is None:
        errors.add(("polling_unit",), "must be a polling unit id string like 'BKK_1-0001'")
    elif unit.id != unit_id:
        errors.add(("polling_unit",), f"{unit_id!r} is not written as this ledger writes it; use {unit.id!r}")
        return None
    return unit


def _registered_voters(errors: _Errors, submission: Mapping[str, Any], unit: PollingUnit | None) -> int | None:
    """The registered voters as on the form; they must match the unit's."""
    if "registered_voters" not in submission:
        return None
    registered = _count(errors, ("registered_voters",), submission["registered_voters"])
    if registered is not None and unit is not None and registered != unit.registered_voters:
        errors.add(
            ("registered_voters",), f"{registered} does not match unit {unit.id}'s {unit.registered_voters} registered voters"
        )
    return registered


def _form_inconsistent(errors: _Errors, submission: Mapping[str, Any]) -> bool:
    form_inconsistent = submission.get("form_inconsistent", False)
    if not isinstance(form_inconsistent, bool):
        errors.add(("form_inconsistent",), "must be true or false")
        return False
    return form_inconsistent


def _ballots(
    errors: _Errors,
    submission: Mapping[str, Any],
    election: Election,
    unit: PollingUnit | None,
    registered: int | None,
    form_inconsistent: bool,
) -> dict[str, object]:
    """Both ballots' counts, checked against the unit's ballot and voters (none without a unit)."""
    ballots: dict[str, object] = {}
    if unit is None:
        return ballots
    constituency = election.constituency(unit.constituency_id)
    known = {"constituency": set(constituency.candidates), "party_list": set(election.parties_by_number)}
    nouns = {"constituency": "candidate", "party_list": "party"}
    voters = min(unit.registered_voters, registered if registered is not None else unit.registered_voters)
    for name in BALLOTS:
        if name in submission:
            ballot = _ballot(errors, name, submission[name], known[name], nouns[name], voters, form_inconsistent)
            if ballot is not None:
                ballots[name] = ballot
    return ballots


def _photos(errors: _Errors, submission: Mapping[str, Any], photo_exists: Callable[[CID], bool]) -> dict[str, CID]:
    """The photo links by role: known roles, the required ones present, each a stored photo."""
    photos: dict[str, CID] = {}
    if "photos" not in submission:
        return photos
    raw_photos = submission["photos"]
    if not isinstance(raw_photos, Mapping):
        errors.add(("photos",), "must be an object mapping photo roles to CIDs")
        return photos
    for role in sorted(set(raw_photos) - set(REQUIRED_PHOTOS) - set(OPTIONAL_PHOTOS)):
        errors.add(("photos", role), f"is not a photo role; expected {', '.join(REQUIRED_PHOTOS + OPTIONAL_PHOTOS)}")
    for role in REQUIRED_PHOTOS:
        if role not in raw_photos:
            errors.add(("photos", role), "is required")
    for role in REQUIRED_PHOTOS + OPTIONAL_PHOTOS:
        if role not in raw_photos:
            continue
        cid = _link(errors, ("photos", role), raw_photos[role])
        if cid is None:
            continue
        if not photo_exists(cid):
            errors.add(("photos", role), f"photo {cid} is not stored here; upload it first")
            continue
        photos[role] = cid
    return photos


def _corrects(errors: _Errors, submission: Mapping[str, Any]) -> list[CID]:
    """The records this one corrects: 1 to 20 CIDs."""
    corrects: list[CID] = []
    if "corrects" not in submission:
        return corrects
    raw_corrects = submission["corrects"]
    if not isinstance(raw_corrects, list) or not raw_corrects or len(raw_corrects) > 20:
        errors.add(("corrects",), "must be a list of 1 to 20 record CIDs that this record corrects")
        return corrects
    for position, link in enumerate(raw_corrects):
        corrected = _link(errors, ("corrects", position), link)
        if corrected is not None:
            corrects.append(corrected)
    return corrects


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
    _envelope(errors, submission, election, signed)
    unit = _polling_unit(errors, submission, election)
    submission_id = _entry_id(errors, submission, "submission_id")
    submitted_at = _utc_time(errors, submission, "submitted_at", election.reporting_window)
    submitter = _address(errors, submission, "submitter")
    registered = _registered_voters(errors, submission, unit)
    form_inconsistent = _form_inconsistent(errors, submission)
    ballots = _ballots(errors, submission, election, unit, registered, form_inconsistent)
    photos = _photos(errors, submission, photo_exists)
    corrects = _corrects(errors, submission)
    signature = _signature(errors, submission)
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
    if corrects:
        node["corrects"] = corrects
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


def check_stored_tally(node: Mapping[str, Any], *, election: Election) -> None:
    """Raise ``InvalidTally`` unless a stored tally record (a decoded block, signature
    already checked) is exactly what ``validate_tally`` makes of it today.

    The auditor and the server use this on records that are already in the ledger: one
    accepted before a rule was tightened (a party key written "๓๑") is named, and set aside
    rather than counted."""
    from ledger.core.record import node_to_json, unsigned

    document = node_to_json(node)
    if not isinstance(document, dict):
        raise InvalidTally([FieldError((), "a tally record is a map")])
    rebuilt = validate_tally(document, election=election, photo_exists=lambda _cid: True, signed=False)
    if rebuilt != unsigned(node):
        raise InvalidTally([FieldError((), "is not written in the one canonical form that validation gives a tally")])


_DECISION_FIELDS = {
    "format",
    "election",
    "decision_id",
    "decided_at",
    "decider",
    "role",
    "action",
    "subject",
    "record",
    "reopens",
    "reason",
    "signature",
}


def validate_decision(submission: Mapping[str, Any], *, election: Election, signed: bool = True) -> dict[str, object]:
    """Check a submitted ``tally-decision-v1`` and return its canonical node (see ledger.core.decision).

    This checks the entry's shape and signature only; whether the decision is allowed
    (role, state) is for ``ledger.core.decision.Replay`` and ``ledger.review.service``.
    """
    from ledger.core.decision import ACTIONS, DECISION_FORMAT

    errors = _Errors()
    if not isinstance(submission, Mapping):
        raise InvalidTally([FieldError((), "a decision must be a JSON object")])
    for extra in sorted(set(submission) - _DECISION_FIELDS):
        errors.add((extra,), "is not a field of a decision")
    required = {"decision_id", "decided_at", "decider", "role", "action", "subject"} | ({"signature"} if signed else set())
    for name in sorted(required - set(submission)):
        errors.add((name,), "is required")
    if submission.get("format", DECISION_FORMAT) != DECISION_FORMAT:
        errors.add(("format",), f"must be {DECISION_FORMAT!r}")
    if submission.get("election", election.id) != election.id:
        errors.add(("election",), f"this ledger reports election {election.id!r}")
    decision_id = _entry_id(errors, submission, "decision_id")
    decided_at = _utc_time(errors, submission, "decided_at")
    decider = _address(errors, submission, "decider")
    role = submission.get("role")
    if "role" in submission and role not in ("constituency_head", "war_room", "ledger"):
        errors.add(("role",), "must be constituency_head, war_room or ledger")
    action = submission.get("action")
    if "action" in submission and action not in ACTIONS:
        errors.add(("action",), f"must be one of {', '.join(ACTIONS)}")
    subject = submission.get("subject")
    if "subject" in submission:
        if not isinstance(subject, str):
            errors.add(("subject",), "must be a polling unit or constituency id")
        elif action == "certify_constituency" or (action == "reopen" and subject in election.constituencies):
            if subject not in election.constituencies:
                errors.add(("subject",), f"no constituency {subject!r} in election {election.id}")
        else:
            try:
                election.polling_unit(subject)
            except NotFound as exc:
                errors.add(("subject",), str(exc))
    links: dict[str, CID] = {}
    for name in ("record", "reopens"):
        if name in submission and submission[name] is not None:
            link = _link(errors, (name,), submission[name])
            if link is not None:
                links[name] = link
    reason = submission.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 2000):
        errors.add(("reason",), "must be text of at most 2000 characters")
    signature = _signature(errors, submission) if signed else None
    if errors.items:
        raise InvalidTally(errors.items)
    node: dict[str, object] = {
        "format": DECISION_FORMAT,
        "election": election.id,
        "decision_id": decision_id,
        "decided_at": decided_at,
        "decider": decider,
        "role": role,
        "action": action,
        "subject": subject,
        **links,
    }
    if reason:
        node["reason"] = reason
    if not signed:
        return node
    node["signature"] = signature
    try:
        verify_entry_signature(node)
    except InvalidSignature as exc:
        raise InvalidTally([FieldError(("signature",), str(exc))]) from None
    return node
