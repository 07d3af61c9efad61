"""Shared field types, base models and the error body of the HTTP API's shapes (``XCreate`` in, ``XPublic`` out).

These describe the wire; the ledger's own documents (records, receipts, proofs, aggregates)
are produced by ``ledger/`` and are modelled here with their guaranteed fields, leaving room
(``extra="allow"``) for fields a later version adds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo
from pydantic_core import PydanticCustomError

from ledger.app import KEY_ROLES
from ledger.plaintext import PLAIN_TEXT_PATTERN, plain_text_problem

__all__ = [
    "Address",
    "AreaId",
    "BallotNumber",
    "Contact",
    "Count",
    "ErrorItem",
    "ErrorPublic",
    "KeyRole",
    "Name",
    "PLAIN_TEXT",
    "RecordCid",
    "Timestamp",
]

Address = Annotated[
    str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$"), Field(examples=["0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1"])
]


def _plain_text(what: str) -> AfterValidator:
    """Refuse control, format (bidi, zero-width), private-use and unassigned characters
    (``ledger.plaintext``), naming the field and the character."""

    def check(value: str | None, info: ValidationInfo) -> str | None:
        problem = None if value is None else plain_text_problem(value)
        if problem is not None:
            raise PydanticCustomError(
                "plain_text",
                "{field}: {problem}; {what} must be plain text",
                {"field": info.field_name or "text", "problem": problem, "what": what},
            )
        return value

    return AfterValidator(check)


PLAIN_TEXT = Field(
    json_schema_extra={"pattern": PLAIN_TEXT_PATTERN},
    description="Plain text: no control, format (bidi, zero-width), private-use or unassigned characters",
)
Name = Annotated[str, StringConstraints(min_length=1, max_length=100), _plain_text("names"), PLAIN_TEXT]
Contact = Annotated[str, StringConstraints(max_length=200), _plain_text("contacts"), PLAIN_TEXT]
AreaId = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9_]{1,32}$")]
Timestamp = Annotated[str, Field(description="UTC time, ISO 8601 with a Z", examples=["2023-05-14T10:31:07.000000Z"])]
BallotNumber = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,2}$")]


def _no_default(schema: dict[str, Any]) -> None:
    """Leave ``default`` out of a field's schema: the field is left out, never sent as null."""
    schema.pop("default", None)


RecordCid = Annotated[
    str,
    StringConstraints(pattern=r"^bafyrei[a-h][a-z2-7]{50}[aeimquy4]$"),
    Field(description="A record's CID (dag-cbor, bafyrei…)"),
]
Count = Annotated[int, Field(ge=0, le=10_000_000)]
KeyRole = Literal[KEY_ROLES]  # type: ignore[valid-type]  # built from the one role vocabulary (ledger.people.roles)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors --------------------------------------------------------------------------


class ErrorItem(BaseModel):
    path: list[str | int] = Field(
        description='Where the problem is, e.g. ["party_list", "votes", "31"]; empty for the whole request'
    )
    message: str


class ErrorPublic(BaseModel):
    """Every error answer."""

    error: str = Field(description="The kind of error, e.g. invalid_tally, not_found, rate_limited")
    errors: list[ErrorItem]
