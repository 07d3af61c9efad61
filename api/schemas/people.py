"""Access and the volunteer hierarchy: API keys, volunteers, sign-in, organisations, members."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StringConstraints

from api.schemas.common import Address, AreaId, Contact, KeyRole, Name, Timestamp, _Closed

__all__ = [
    "AssignmentCreate",
    "AssignmentResult",
    "ChallengeCreate",
    "ChallengePublic",
    "MemberCreate",
    "MemberPrivate",
    "OrganisationCreate",
    "OrganisationId",
    "OrganisationPublic",
    "PrincipalCreate",
    "PrincipalCreated",
    "PrincipalPublic",
    "ScopeCreate",
    "SessionCreate",
    "SessionPublic",
    "SessionsEndedPublic",
    "VolunteerCreate",
    "VolunteerPublic",
    "WhoAmIPublic",
]

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


class InvitationCreate(_Closed):
    volunteer: Address = Field(description="A custodial level-1 volunteer of an organisation your key is scoped to")


class InvitationPublic(BaseModel):
    code: str = Field(description="Shown once: the volunteer signs in with it at POST /v1/auth/invitation, once")
    address: str
    public_id: str
    expires_at: Timestamp


class InvitationRedeem(_Closed):
    code: Annotated[str, StringConstraints(max_length=64)] = Field(
        description="The code the coordinator gave (16 letters and digits; dashes and spaces are ignored)"
    )
