"""Request and response shapes of the HTTP API (``XCreate`` in, ``XPublic`` out).

These describe the wire; the ledger's own documents (records, receipts, proofs, aggregates)
are produced by ``ledger/`` and are modelled here with their guaranteed fields, leaving room
(``extra="allow"``) for fields a later version adds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StringConstraints, ValidationInfo
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from ledger.people.access import KEY_ROLES
from ledger.plaintext import PLAIN_TEXT_PATTERN, plain_text_problem

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
KeyRole = Literal["constituency_head", "war_room", "coordinator", "newsroom", "auditor", "admin"]
assert set(KeyRole.__args__) == set(KEY_ROLES)  # type: ignore[attr-defined]


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


# -- access --------------------------------------------------------------------------


class ScopeCreate(_Closed):
    constituencies: list[AreaId] | None = Field(default=None, max_length=400, description="Constituency ids, e.g. BKK_1")
    provinces: list[AreaId] | None = Field(default=None, max_length=77, description="Province ids, e.g. BKK")
    organisations: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")]] | None = Field(
        default=None, max_length=50, description="Organisation ids a coordinator manages"
    )


class PrincipalCreate(_Closed):
    role: KeyRole
    name: Name
    scope: ScopeCreate | None = Field(default=None, description="Areas a constituency head is responsible for")


class PrincipalPublic(BaseModel):
    id: int
    role: str
    name: str
    scope: dict[str, list[str]] | None
    token_hint: str = Field(description="The first characters of the key, to tell keys apart")
    created_at: Timestamp
    revoked_at: Timestamp | None


class PrincipalCreated(PrincipalPublic):
    token: str = Field(description="The API key. Shown only now; send it as 'Authorization: Bearer <token>'")


class VolunteerCreate(_Closed):
    address: Address
    name: Name | None = None


class VolunteerPublic(BaseModel):
    address: str
    name: str | None
    registered_at: Timestamp
    revoked_at: Timestamp | None


class ChallengeCreate(_Closed):
    address: Address


class ChallengePublic(BaseModel):
    address: str
    nonce: str
    message: str = Field(description="Sign exactly this text with personal_sign (EIP-191)")
    issued_at: Timestamp
    expires_at: Timestamp


class SessionCreate(_Closed):
    address: Address
    nonce: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    signature: Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")] = Field(
        description="65-byte personal_sign signature of the challenge message, 0x-prefixed hex"
    )


class SessionPublic(BaseModel):
    token: str = Field(description="Send as 'Authorization: Bearer <token>'")
    token_type: Literal["bearer"] = "bearer"
    address: str
    expires_at: Timestamp


class SessionsEndedPublic(BaseModel):
    address: str
    sessions_ended_at: Timestamp = Field(description="Every session token of the address issued before this is refused")


class WhoAmIPublic(BaseModel):
    role: str
    name: str
    address: str | None = None
    principal_id: int | None = None
    scope: dict[str, Any] | None = None


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


# -- records, proofs, batches ----------------------------------------------------------


class RecordPublic(BaseModel):
    record_cid: str
    kind: str
    polling_unit: str
    constituency_id: str
    signer: str
    submission_id: str
    received_at: Timestamp
    batch_id: int | None
    record: dict[str, Any] = Field(description='The record as JSON (photo links as {"/": cid}, signature as hex)')
    receipt: dict[str, Any]


class UnitRecordsPublic(BaseModel):
    polling_unit: str
    constituency_id: str
    records: list[RecordPublic]


class LeafPublic(_Open):
    format: str
    encoding: list[str]
    values: list[str]
    hash: str


class ProofBatchPublic(_Open):
    id: int
    root: str
    record_count: int
    manifest_cid: str
    tree_index: int
    position: int | None


class AnchorPublic(_Open):
    chain_id: int | None
    contract: str | None
    batch_id: int
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None


class ProofPublic(_Open):
    """A ``tally-proof-v1`` document (see ``ledger/proofs.py``)."""

    format: Literal["tally-proof-v1"]
    record_cid: str
    polling_unit: str
    leaf: LeafPublic
    status: Literal["pending", "sealed", "anchored"]
    seal_deadline: str | None
    batch: ProofBatchPublic | None
    proof: list[str]
    anchor: AnchorPublic | None


class UnitProofsPublic(BaseModel):
    polling_unit: str
    proofs: list[ProofPublic]


class BatchPublic(BaseModel):
    id: int
    root: str
    record_count: int
    sealed_at: Timestamp
    manifest_cid: str
    status: Literal["sealed", "sending", "anchored"]
    anchor: AnchorPublic | None


class BatchPagePublic(BaseModel):
    batches: list[BatchPublic]
    offset: int
    limit: int
    next_offset: int | None = Field(description="Pass as offset for the next page; null at the end")


class OzValuePublic(_Open):
    value: list[str]
    treeIndex: int


class OzDumpPublic(_Open):
    """``@openzeppelin/merkle-tree``'s ``StandardMerkleTree.dump()`` of the batch (``standard-v1``)."""

    format: Literal["standard-v1"]
    leafEncoding: list[str]
    tree: list[str]
    values: list[OzValuePublic]


# -- election ----------------------------------------------------------------------------


class ProvincePublic(BaseModel):
    id: str
    name: str
    name_en: str
    registered_voters: int


class PartyPublic(BaseModel):
    id: str
    number: int | None
    name: str
    abbreviation: str
    color: str


class ConstituencySummaryPublic(BaseModel):
    id: str
    province_id: str
    number: int
    registered_voters: int
    unit_count: int


class CandidatePublic(BaseModel):
    number: int
    name: str
    party_id: str


class ConstituencyPublic(ConstituencySummaryPublic):
    zones: list[str]
    candidates: list[CandidatePublic]
    first_unit: str
    last_unit: str


class ElectionPublic(BaseModel):
    id: str
    name: str
    polling_day: str
    polls_close: str
    constituency_seats: int
    party_list_seats: int
    max_voters_per_unit: int
    unit_count: int
    registered_voters: int
    provinces: list[ProvincePublic]
    parties: list[PartyPublic]
    constituencies: list[ConstituencySummaryPublic]


class HealthPublic(BaseModel):
    status: Literal["ok"]
    election: str
    entries_counted: int = Field(description="Id of the last ledger entry the aggregates have counted")
    background: dict[str, bool]
    prepare_workers: int = Field(
        0,
        description="Processes preparing tallies beside the API; 0 when they are prepared "
        "in the API process (by setting, on one CPU, or after the pool failed)",
    )


class QuarantinedPublic(BaseModel):
    stage: Literal["aggregates", "certified", "screening", "replay", "sealing"] = Field(
        description="Where the entry could not be used: counted (unofficial or certified view), screened, "
        "replayed as a decision, or sealed into a batch"
    )
    entry: str = Field(description="The entry's record CID (a polling unit when a whole unit could not be screened)")
    subject: str = Field(description="The polling unit or constituency it is about")
    reason: str | None = Field(description="Why (for the war room, the admin and auditors; null for everyone else)")
    since: str = Field(description="When this process first set it aside (UTC)")


class ReadyPublic(BaseModel):
    status: Literal["ready", "degraded"] = Field(
        description="'degraded' when entries are set aside: the service still serves everything else"
    )
    election: str
    entries_counted: int
    quarantined: int = Field(description="How many entries are set aside")
    entries: list[QuarantinedPublic] = Field(description="The first 100 of them")


# -- aggregates ------------------------------------------------------------------------


class AggregateMeta(_Open):
    view: Literal["unofficial", "certified"]
    units_reporting: int
    units_total: int
    computed_at: Timestamp
    version: int


class AreaResultPublic(AggregateMeta):
    registered_voters: int
    registered_voters_reporting: int
    party_list_ballots_cast: int
    constituency_ballots_cast: int
    turnout: float | None
    progress: float


class NationalResultPublic(AreaResultPublic):
    election: str


class ProvinceResultPublic(AreaResultPublic):
    province_id: str
    name: str
    name_en: str


class CandidateResultPublic(_Open):
    number: int
    name: str
    party_number: int | None
    party: str
    votes: int
    share: float


class ConstituencyResultPublic(AggregateMeta):
    constituency_id: str
    province_id: str
    number: int
    registered_voters: int
    registered_voters_reporting: int
    ballots_cast: int
    turnout: float | None
    invalid: int
    no_vote: int
    candidates: list[CandidateResultPublic]
    leader: CandidateResultPublic | None
    margin: int | None
    tied: list[int]


class PartyVotesPublic(_Open):
    number: int
    name: str
    votes: int
    share: float


class PartyListResultPublic(AggregateMeta):
    total_votes: int
    parties: list[PartyVotesPublic]
    seats: dict[str, Any] | None = Field(description="tally-party-list-allocation-v1 (ledger/seats.py); null before any vote")


class HouseResultPublic(AggregateMeta):
    """Meta plus a ``tally-house-projection-v1`` document (ledger/seats.py)."""

    format: str
    seats: int
    majority: int
    parties: list[dict[str, Any]]
    undecided: dict[str, Any]


# -- feed -------------------------------------------------------------------------------


class FeedItemPublic(_Open):
    cursor: int = Field(description="Pass as 'after' (or Last-Event-ID) to continue after this item")
    kind: str
    record_cid: str
    polling_unit: str
    constituency_id: str
    signer: str
    received_at: Timestamp
    document: dict[str, Any]


class FeedPagePublic(BaseModel):
    items: list[FeedItemPublic]
    next_cursor: int
    has_more: bool = Field(description="true when the page was full: ask again at once with after=next_cursor")


# -- the volunteer hierarchy and review (ledger/review.py) -------------------------------

OrganisationId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")]


class OrganisationCreate(_Closed):
    id: OrganisationId
    name: Name
    kind: Literal["civil_society", "party", "university", "local_government", "media", "other"]


class OrganisationPublic(BaseModel):
    id: str
    name: str
    kind: str


class MemberCreate(_Closed):
    address: Address | None = Field(default=None, description="The member's own key (self-custody); omit with custodial")
    custodial: StrictBool = Field(default=False, description="Make and keep a key for a volunteer without a wallet")
    level: Literal[1, 2, 3] = Field(description="1 unit volunteer, 2 constituency head, 3 war room")
    name: Name
    contact: Contact | None = Field(default=None, description="Private: never shown publicly")
    organisation: OrganisationId | None = None


class MemberPrivate(BaseModel):
    """What the admin and the member's coordinator see; the public sees only organisation
    and ``public_id``."""

    address: str
    public_id: str
    level: int
    organisation: str | None
    name: str
    contact: str | None
    custodial: bool
    refused_attempts: int
    rejected_reports: int
    flagged: bool


class AssignmentCreate(_Closed):
    areas: list[Annotated[str, StringConstraints(pattern=r"^[A-Z0-9_]{1,32}(-[0-9]{4})?$")]] = Field(
        min_length=1, max_length=5000, description="Unit ids for a level-1 volunteer, constituency ids for a head"
    )


class AssignmentResult(BaseModel):
    address: str
    added: list[str]


class CustodialTallyCreate(_Closed):
    volunteer: Address
    tally: dict[str, Any] = Field(description="An unsigned tally (TallyCreate without submitter and signature)")
