"""The two hot paths of election night, answered as plain ASGI before FastAPI's routing.

- ``AggregatesFastPath``: thousands of readers polling the same few documents.
  ``GET /v1/aggregates/{view}/{resource}`` (no query, or ``format=json`` / ``format=csv``
  where the route takes it) is answered with the stored bytes and ETag of
  ``api.routes.aggregates.rendered``.
- ``SubmissionsFastPath``: every volunteer submitting at 17:00. ``POST /v1/tallies`` (no
  query) reads the body and calls ``api.routes.submissions.accept_tally``, the route's own
  code; ``POST /v1/photos`` (no query, a Content-Length up to ``WHOLE_PHOTO_BYTES``) reads
  the photo and calls ``ingest_whole`` and ``index_photo``, as the route does.

Both run the same authentication, rate limit and role check as every route
(``ledger.people.access``) and answer errors with ``api.errors``, skipping routing and dependency
resolution. Every exception raised in their own work becomes a well-formed answer
(``api.errors.response_for``: the route's 4xx, or a logged 500), never an escaped
exception and a dropped connection. Anything they do not recognise exactly (another query, an unknown id, a key
that is not cached yet, a view that must be refreshed on read) goes on to the FastAPI
routes, which are the reference behaviour and what the OpenAPI document describes; the
tests compare the two.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import MAX_JSON_BYTES, VOLUNTEERS, bearer_token, check_json_type, parse_json, peek_caller, read_limited
from api.errors import ledger_error_response, response_for
from api.routes.aggregates import matches_etag, rendered
from api.routes.submissions import (
    REPORTERS,
    WHOLE_PHOTO_BYTES,
    accept_tally,
    check_photo_type,
    index_photo,
    ingest_whole,
)
from api.state import AppState
from ledger.core.strict import is_canonical_decimal
from ledger.errors import LedgerError
from ledger.people.access import Caller, RateLimited, Unauthenticated, require_role

__all__ = ["AggregatesFastPath", "SubmissionsFastPath"]

PREFIX = "/v1/aggregates/"
LISTS = {"provinces": "provinces", "constituencies": "constituencies", "party-list": "party_list"}
SINGLE = {"national": "national", "house": "house"}
FORMATS = {b"": "json", b"format=json": "json", b"format=csv": "csv"}


async def authenticate(state: AppState, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> Caller | None:
    """The caller, charged against their rate limit, as ``api.deps.get_caller`` finds it.
    ``None`` when the request has been answered already: refused (401, 429), or handed on
    to ``app`` (the routes) because the key must be looked up in the database, which the
    routes do off the event loop."""
    authorization = _header(scope, b"authorization")
    client = scope.get("client")
    client_ip = client[0] if client else None
    try:
        caller = peek_caller(state, bearer_token(authorization), client_ip=client_ip)
    except Unauthenticated as refused:
        error: LedgerError = refused
        try:
            state.limiter.admit(state.access.anonymous(client_ip))  # failed attempts count against the IP
        except RateLimited as limited:
            error = limited
        await ledger_error_response(error)(scope, receive, send)
        return None
    except Exception as error:  # noqa: BLE001 - e.g. InvalidNumber (422); anything else is a logged 500
        await response_for(error)(scope, receive, send)
        return None
    if caller is None:
        await app(scope, receive, send)
        return None
    try:
        state.limiter.admit(caller)
    except Exception as error:  # noqa: BLE001 - RateLimited: 429; anything else is a logged 500
        await response_for(error)(scope, receive, send)
        return None
    return caller


class AggregatesFastPath:
    def __init__(self, app: ASGIApp, *, state: AppState):
        self.app = app
        self.state = state

    def _target(self, path: str, query: bytes) -> tuple[str, str, str] | None:
        parts = path[len(PREFIX) :].split("/")
        fmt = FORMATS.get(query)
        if fmt is None or parts[0] not in ("unofficial", "certified"):
            return None
        election = self.state.ledger_app.election
        if len(parts) == 2:
            if parts[1] in SINGLE and fmt == "json" and query == b"":
                return parts[0], SINGLE[parts[1]], fmt
            if parts[1] in LISTS:
                return parts[0], LISTS[parts[1]], fmt
        elif len(parts) == 3 and query == b"":
            if parts[1] == "provinces" and parts[2] in election.provinces:
                return parts[0], f"province:{parts[2]}", fmt
            if parts[1] == "constituencies" and parts[2] in election.constituencies:
                return parts[0], f"constituency:{parts[2]}", fmt
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not scope["path"].startswith(PREFIX)
            or self.state.refresh_on_read
        ):
            await self.app(scope, receive, send)
            return
        try:
            target = self._target(scope["path"], scope["query_string"])
        except Exception as error:  # noqa: BLE001 - a fault of ours: a logged 500, never a dropped connection
            await response_for(error)(scope, receive, send)
            return
        if target is None:
            await self.app(scope, receive, send)
            return
        if_none_match = _header(scope, b"if-none-match")
        caller = await authenticate(self.state, self.app, scope, receive, send)
        if caller is None:
            return
        view, resource, fmt = target
        try:
            answer = rendered(self.state, view, resource, fmt)
            not_modified = matches_etag(if_none_match, answer.etag)
        except Exception as error:  # noqa: BLE001 - a fault of ours: a logged 500, never a dropped connection
            await response_for(error)(scope, receive, send)
            return
        if not_modified:
            await send({"type": "http.response.start", "status": 304, "headers": answer.not_modified_headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": answer.raw_headers})
        await send({"type": "http.response.body", "body": answer.body})


class SubmissionsFastPath:
    """``POST /v1/tallies`` and small ``POST /v1/photos``, without a query: the route's
    checks in the route's order (caller, rate limit, role, content type, body size), then
    the route's own code."""

    def __init__(self, app: ASGIApp, *, state: AppState):
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["query_string"]:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/v1/tallies":
            answer = self._tally
        elif path == "/v1/photos" and 0 <= _content_length(scope) <= WHOLE_PHOTO_BYTES:
            answer = self._photo
        else:
            await self.app(scope, receive, send)
            return
        caller = await authenticate(self.state, self.app, scope, receive, send)
        if caller is None:
            return
        try:
            status, body, headers = await answer(scope, receive, caller)
            raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            raw_headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        except Exception as error:  # noqa: BLE001 - each becomes the answer the routes would give (else a logged 500)
            await response_for(error)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})

    async def _tally(self, scope: Scope, receive: Receive, caller: Caller) -> tuple[int, bytes, dict[str, str]]:
        require_role(caller, REPORTERS)
        check_json_type(_header(scope, b"content-type"))
        return await accept_tally(self.state, caller, parse_json(await _read_body(receive)))

    async def _photo(self, scope: Scope, receive: Receive, caller: Caller) -> tuple[int, bytes, dict[str, str]]:
        require_role(caller, VOLUNTEERS)
        check_photo_type(_header(scope, b"content-type"))
        body = await _read_body(receive, WHOLE_PHOTO_BYTES)
        return await index_photo(self.state, caller, await ingest_whole(self.state, bytes(body)))


def _header(scope: Scope, wanted: bytes) -> str | None:
    """The first header of that (lowercase) name, as Starlette's ``request.headers.get``."""
    for name, value in scope["headers"]:
        if name == wanted:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def _content_length(scope: Scope) -> int:
    """The declared Content-Length, or -1 without one (a chunked upload)."""
    value = _header(scope, b"content-length")
    return int(value) if value is not None and is_canonical_decimal(value) else -1


async def _read_body(receive: Receive, limit: int = MAX_JSON_BYTES) -> bytearray:
    return await read_limited(_pieces(receive), limit)


async def _pieces(receive: Receive) -> AsyncIterator[bytes]:
    """The body's pieces as Starlette's ``request.stream()`` gives them."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
