"""How a tally's numbers are counted: fixed vector positions per ballot, shared by the
server's aggregates (``ledger.results.aggregates``) and the auditor (``ledger.audit.checks``), so
that what one can count the other counts too. Pure: the election definition in, arrays out.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from ledger.election import Election

__all__ = ["UnitResult", "VectorLayout", "countable", "layout_of"]

_INT32 = 1 << 31


@dataclass(frozen=True, slots=True)
class UnitResult:
    """One unit's counted numbers: [ballots_cast, invalid, no_vote, *votes] for each ballot.

    The vectors are compact arrays (never changed once made): a view holds one per unit,
    and the party list has a place for each of the 67 parties, so a tuple of Python ints
    cost about 400 bytes more per unit and view."""

    constituency: array[int]
    party_list: array[int]
    record_cid: str
    entry_id: int = 0


class VectorLayout:
    """Fixed vector positions of candidates (per constituency) and parties (nationally)."""

    def __init__(self, election: Election):
        self.election = election
        self.party_numbers = sorted(election.parties_by_number)
        self.party_index = {str(n): 3 + i for i, n in enumerate(self.party_numbers)}
        self.candidate_numbers = {cid: sorted(c.candidates) for cid, c in election.constituencies.items()}
        self.candidate_index = {
            cid: {str(n): 3 + i for i, n in enumerate(numbers)} for cid, numbers in self.candidate_numbers.items()
        }

    def result(self, constituency_id: str, document: Mapping[str, Any], record_cid: str, entry_id: int = 0) -> UnitResult:
        def vector(ballot: Mapping[str, Any], index: Mapping[str, int]) -> array[int]:
            values = [0] * (3 + len(index))
            values[0], values[1], values[2] = ballot["ballots_cast"], ballot["invalid"], ballot["no_vote"]
            for number, votes in ballot["votes"].items():
                values[index[number]] += votes
            # Validated counts are at most a unit's voters; 64 bits for anything larger.
            return array("i" if min(values) >= -_INT32 and max(values) < _INT32 else "q", values)

        return UnitResult(
            vector(document["constituency"], self.candidate_index[constituency_id]),
            vector(document["party_list"], self.party_index),
            record_cid,
            entry_id,
        )


@cache
def layout_of(election: Election) -> VectorLayout:
    """The layout of ``election`` (one per election: it indexes every candidate)."""
    return VectorLayout(election)


def countable(constituency_id: str, document: Mapping[str, Any], election: Election) -> bool:
    """Whether a tally's numbers can be counted at all: the aggregates set aside what is not."""
    try:
        layout_of(election).result(constituency_id, document, "")
    except Exception:  # noqa: BLE001 - any shape that does not count
        return False
    return True
