"""Dependencies shared by the routes, as ``Annotated`` aliases, and the access table.

Every route declares who may call it with ``**access(...)``: that adds the role check,
lists the roles in the OpenAPI operation (``x-roles`` and its description) and documents
the 401/403/429 answers. Authentication and rate limiting run once per request
(``get_caller``), whatever the route.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Mapping
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from fastapi import Depends, Path, Request
from fastapi.dependencies.models import Dependant
from starlette.concurrency import run_in_threadpool

from api.errors import BadRequestBody
from api.schemas import ErrorPublic
from api.state import AppState
from ledger.app import ADMIN_ONLY, ANONYMOUS, EVERYONE, FEED_READERS, VOLUNTEERS, Caller, Unauthenticated, require_role
from ledger.errors import LedgerError

__all__ = [
    "ADMIN_ONLY",
    "CID_PATTERN",
    "EVERYONE",
    "FEED_READERS",
    "MAX_JSON_BYTES",
    "VOLUNTEERS",
    "AreaPath",
    "CallerDep",
    "CidPath",
    "StateDep",
    "UnitPath",
    "access",
    "authenticate",
    "bearer_token",
    "check_json_type",
    "error_responses",
    "malformed_credentials",
    "parse_json",
    "peek_caller",
    "read_json",
    "read_limited",
    "reject_unknown_query",
]

CID_PATTERN = r"^b(afkrei|afybei|afyrei)[a-h][a-z2-7]{50}[aeimquy4]$"
"""The CIDs this ledger makes: v1, sha2-256, raw (``bafkrei…``), dag-pb (``bafybei…``) or
dag-cbor (``bafyrei…``), lowercase base32; exactly the strings that parse to such a CID."""
CidPath = Annotated[
    str,
    Path(
        pattern=CID_PATTERN,
        description="A CID (v1, sha2-256, base32: bafkrei…, bafybei…, bafyrei…)",
        examples=["bafyreiadcveuokiyjkcscbjl6qzaqvbmggxfglvg3r6dgkizzdyauovqa4"],
    ),
]
UnitPath = Annotated[str, Path(pattern=r"^[A-Z0-9_]{1,32}-[0-9]{4}$", description="A polling unit id, e.g. BKK_1-0001")]
AreaPath = Annotated[str, Path(pattern=r"^[A-Z0-9_]{1,32}$", description="A province or constituency id, e.g. BKK or BKK_1")]

MAX_JSON_BYTES = 1 << 20

_DESCRIPTIONS = {
    400: "The request could not be read",
    401: "Missing, malformed, expired or revoked credentials",
    403: "The caller's role may not do this",
    404: "Not found",
    409: "Conflicts with what the ledger already holds",
    413: "The body is too large",
    415: "The body is of a type this endpoint does not take",
    422: "The request is not valid; each error says where (path) and what",
    429: "Too many requests; wait Retry-After seconds",
    503: "A backing service (database, content store, chain) is unavailable; retry later",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, all with the ``ErrorPublic`` body."""
    return {status: {"model": ErrorPublic, "description": _DESCRIPTIONS[status]} for status in statuses}


async def get_state(request: Request) -> AppState:
    return request.app.state.tally  # type: ignore[no-any-return]


StateDep = Annotated[AppState, Depends(get_state)]


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (``None`` without the header)."""
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token


def malformed_credentials(error: ValueError) -> Unauthenticated:
    """A token that trips a parser (``int()`` of '³¹', ``.encode("ascii")`` of 'é') is a
    malformed credential, whoever parses it: 401, never 500."""
    return Unauthenticated(
        f"malformed credentials ({type(error).__name__}); send 'Bearer <token>' with the token "
        "exactly as it was issued, or sign in again at POST /v1/auth/challenge"
    )


T = TypeVar("T")


def _credentials_checked(check: Callable[..., T], token: str | None, client_ip: str | None) -> T:
    """``check(token, client_ip=…)`` with any ``ValueError`` of the token's parsing as 401."""
    try:
        return check(token, client_ip=client_ip)
    except LedgerError:
        raise
    except ValueError as error:
        raise malformed_credentials(error) from None


def peek_caller(state: AppState, token: str | None, *, client_ip: str | None) -> Caller | None:
    """``state.access.peek`` (no I/O), with any ``ValueError`` of the token's parsing as 401."""
    return _credentials_checked(state.access.peek, token, client_ip)


def _authenticate(state: AppState, token: str | None, client_ip: str | None) -> Caller:
    return _credentials_checked(state.access.authenticate, token, client_ip)


async def get_caller(request: Request, state: StateDep) -> Caller:
    """Who is calling (anonymous without credentials), charged against their rate limit."""
    return await authenticate(state, request.headers.get("authorization"), request.client.host if request.client else None)


async def authenticate(state: AppState, authorization: str | None, client_ip: str | None) -> Caller:
    """The caller behind an ``Authorization`` header, charged against their rate limit: from
    the access cache when it can tell (no I/O), else looked up off the event loop. A refused
    credential is charged to the client's IP (429 once that is spent), then raised."""
    try:
        token = bearer_token(authorization)
        caller = peek_caller(state, token, client_ip=client_ip)
        if caller is None:
            caller = await run_in_threadpool(_authenticate, state, token, client_ip)
    except Unauthenticated:
        state.limiter.admit(state.access.anonymous(client_ip))  # failed attempts count against the IP
        raise
    state.limiter.admit(caller)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


class _RoleCheck:
    def __init__(self, roles: tuple[str, ...]):
        self.roles = roles

    async def __call__(self, caller: CallerDep) -> Caller:
        require_role(caller, self.roles)
        return caller


def access(
    *roles: str,
    errors: tuple[int, ...] = (),
    responses: Mapping[Any, Any] | None = None,
    openapi_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for a route decorator that let only ``roles`` call it.

    ``errors`` lists the other error statuses the route answers with (documented with the
    ``ErrorPublic`` body); ``responses`` and ``openapi_extra`` add to the OpenAPI operation.
    """
    for role in roles:
        if role not in EVERYONE:
            raise ValueError(f"unknown role {role!r}")
    statuses = {401, 422, 429, 503, *errors} | (set() if ANONYMOUS in roles else {403})
    return {
        "dependencies": [Depends(_RoleCheck(tuple(roles)))],
        "openapi_extra": {**(openapi_extra or {}), "x-roles": list(roles)},
        "responses": {**error_responses(*sorted(statuses)), **(responses or {})},
    }


async def read_json(request: Request, *, limit: int = MAX_JSON_BYTES) -> Any:
    """The request body parsed as JSON (any value; the ledger checks its shape)."""
    check_json_type(request.headers.get("content-type"))
    return parse_json(await read_limited(request.stream(), limit))


async def read_limited(pieces: AsyncIterable[bytes], limit: int) -> bytearray:
    """A body from its pieces, refused (413) as soon as it passes ``limit`` bytes."""
    body = bytearray()
    async for piece in pieces:
        body += piece
        if len(body) > limit:
            raise BadRequestBody(f"the body is larger than {limit} bytes", status=413)
    return body


def check_json_type(header: str | None) -> None:
    """Refuse (415) a body that is not declared JSON; no Content-Type is taken as JSON."""
    content_type = ("application/json" if header is None else header).split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise BadRequestBody(f"send JSON with Content-Type: application/json, not {content_type!r}", status=415)


def parse_json(body: bytes | bytearray) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestBody(f"the body is not valid JSON: {exc}") from None


def _query_names(dependant: Dependant, into: set[str]) -> set[str]:
    into.update(param.alias for param in dependant.query_params)
    for sub in dependant.dependencies:
        _query_names(sub, into)
    return into


_QUERY_NAMES: dict[int, frozenset[str]] = {}


async def reject_unknown_query(request: Request) -> None:
    """Refuse query parameters the endpoint does not take (a typo like ``?fromat=csv``
    would otherwise be silently ignored)."""
    if not request.url.query:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _QUERY_NAMES.get(id(route))
    if known is None:
        known = _QUERY_NAMES[id(route)] = frozenset(_query_names(dependant, set()))
    names = {name for name, _ in parse_qsl(request.url.query, keep_blank_values=True)} | set(request.query_params)
    unknown = sorted(names - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "no query parameters"
        raise BadRequestBody(f"unknown query parameter {unknown[0]!r}; this endpoint takes {takes}", path=("query", unknown[0]))
