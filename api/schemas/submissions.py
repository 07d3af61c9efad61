"""What volunteers send (tallies, photos, relayed custodial tallies) and the receipts they get."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from api.schemas.common import Address, BallotNumber, Count, RecordCid, Timestamp, _Closed, _no_default, _Open

__all__ = ["BallotCount", "CustodialTallyCreate", "GpsPublic", "PhotoPublic", "TallyCreate", "TallyPhotos", "TallyReceiptPublic"]

# -- submissions ---------------------------------------------------------------------


class BallotCount(_Closed):
    ballots_cast: int = Field(ge=0, le=10_000_000)
    votes: dict[BallotNumber, Count] = Field(
        description="Votes by ballot number (candidate or party number, decimal, no leading zeros)"
    )
    invalid: int = Field(ge=0, le=10_000_000)
    no_vote: int = Field(ge=0, le=10_000_000)


class TallyPhotos(_Closed):
    tally_board: str = Field(description="CID of the photo of the tally board (upload it first: POST /v1/photos)")
    form_5_18: str = Field(description="CID of the photo of the signed count form 5/18")
    form_5_18_party_list: str | None = Field(default=None, description="CID of the party-list form, when separate")


class TallyCreate(_Closed):
    """A signed ``tally-record-v1`` (see ``ledger/core/record.py``); ``wallets.tally_client.sign_tally`` makes one."""

    format: Literal["tally-record-v1"] = "tally-record-v1"
    election: str | None = None
    polling_unit: Annotated[str, Field(examples=["BKK_1-0001"], max_length=32)]
    submission_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    submitted_at: Annotated[str, Field(examples=["2023-05-14T10:31:07Z"])]
    submitter: Address
    registered_voters: int = Field(ge=0, le=10_000_000)
    constituency: BallotCount
    party_list: BallotCount
    photos: TallyPhotos
    signature: Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")] = Field(description="EIP-712 signature")
    form_inconsistent: bool | None = Field(default=None, description="true when the signed form itself does not add up")
    corrects: Annotated[list[RecordCid], Field(min_length=1, max_length=20)] | SkipJsonSchema[None] = Field(
        default=None,
        description="Only in a head's corrected tally (the numbers read from the form's photo): the record CIDs of the "
        "reports of this unit that it corrects; then decide it with POST /v1/decisions (action 'correct')",
        json_schema_extra=_no_default,  # absent, never null: the ledger refuses null
    )


class TallyReceiptPublic(_Open):
    """A ``tally-receipt-v1`` signed by the ledger's key."""

    format: Literal["tally-receipt-v1"]
    election: str
    record_cid: str
    polling_unit: str
    submission_id: str
    leaf_hash: str
    received_at: Timestamp
    seal_deadline: Timestamp
    ledger: str = Field(description="Address of the ledger's receipt key")
    signature: str


class GpsPublic(_Open):
    lat: float
    lon: float
    alt: float | None = None


class PhotoPublic(BaseModel):
    """A photo's metadata. Its time and place are evidence and public (exactly as in the
    bytes at ``/v1/content/{cid}``); who uploaded it is not (README, "What is public")."""

    cid: str
    size: int
    media_type: str
    width: int | None = Field(default=None, description="Pixels, as the image header declares")
    height: int | None = None
    taken_at: str | None
    gps: GpsPublic | None
    exif: dict[str, Any]
    uploaded_at: Timestamp
    uploader: str | None = Field(
        description="The uploader's address: only for the uploader themselves and for heads, the war room and "
        "admins; null for everyone else"
    )


class CustodialTallyCreate(_Closed):
    volunteer: Address
    tally: dict[str, Any] = Field(description="An unsigned tally (TallyCreate without submitter and signature)")
