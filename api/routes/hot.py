"""The two hot paths of election night, as plain routes at the head of the app's one routing table.

- ``GET /v1/aggregates/{view}/{resource}``: thousands of readers polling the same few
  documents. With no query, or ``format=json`` / ``format=csv`` where the route takes it,
  it is answered with the bytes and ETag of the view's one cache (``AggregateView.rendered``).
- ``POST /v1/tallies`` (no query): every volunteer submitting at 17:00. The body is read
  and handed to ``LedgerApp.submit_tally``, as the route does.
- ``POST /v1/photos`` (no query, a Content-Length up to ``WHOLE_PHOTO_BYTES``): the photo
  is read whole and stored with ``LedgerApp.ingest_photo_bytes`` and ``record_photo``.

``install`` puts them in ``app.router.routes`` ahead of the FastAPI routes. Each is a
``HotRoute``: a Starlette ``Route`` whose endpoint is a plain ASGI callable (no request
object, no dependency resolution) and which matches only the requests it answers exactly
(``accepts``); anything else (another query, an unknown id, a view refreshed on read,
``HEAD``) matches the FastAPI route behind it, which is the reference behaviour and what the
OpenAPI document describes; the tests compare the two. They run the same authentication,
rate limit and role check as every route (``api.deps.authenticate``), in the route's
order, and every exception raised becomes the answer the routes would give
(``api.errors.response_for``: the route's 4xx, or a logged 500), never an escaped exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import MAX_JSON_BYTES, VOLUNTEERS, authenticate, check_json_type, parse_json, read_limited
from api.errors import response_for
from api.routes.aggregates import aggregate_headers
from api.routes.submissions import REPORTERS, WHOLE_PHOTO_BYTES, check_photo_type, photo_answer
from api.state import AppState
from ledger.app import Caller, require_role
from ledger.core.strict import is_canonical_decimal

__all__ = ["HotEdge", "HotRoute", "install"]

LISTS = {"provinces": "provinces", "constituencies": "constituencies", "party-list": "party_list"}
SINGLE = {"national": "national", "house": "house"}
FORMATS = {b"": "json", b"format=json": "json", b"format=csv": "csv"}
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class HotRoute(Route):
    """A route that matches only what ``accepts(scope)`` takes (its answer, if it does,
    goes to the endpoint as ``scope["tally_hot"]``); everything else falls through to the
    routes behind it."""

    def __init__(self, path: str, endpoint: ASGIApp, accepts: Callable[[Scope], Any]):
        super().__init__(path, endpoint, include_in_schema=False)
        self.accepts = accepts

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """``accepts`` reads the path itself (exactly, with no parameters to convert), so a
        request it takes is a full match without the route's own pattern."""
        if scope["type"] != "http":
            return Match.NONE, {}
        target = self.accepts(scope)
        if target is None:
            return Match.NONE, {}
        return Match.FULL, {"endpoint": self.endpoint, "path_params": {}, "tally_hot": target}


def install(app: FastAPI, state: AppState) -> None:
    """Put the hot routes at the head of ``app``'s routing table, and have ``HotEdge`` take
    them from there at the edge of the stack."""
    hot = [
        HotRoute("/v1/aggregates/{target:path}", _guarded(state, _aggregate), lambda scope: _aggregate_target(state, scope)),
        HotRoute("/v1/tallies", _guarded(state, _tally), _tally_target),
        HotRoute("/v1/photos", _guarded(state, _photo), _photo_target),
    ]
    app.router.routes[:0] = hot
    app.add_middleware(HotEdge, routes=app.router.routes)


class HotEdge:
    """Dispatches the ``HotRoute`` entries of the routing table before the rest of the stack.

    The routes are the table's own (matched and answered exactly as the router would, which
    it does when this is left out); only the layers a plain endpoint has no use for are
    skipped: FastAPI's exception middleware (the endpoints answer their own errors), its
    exit stack and the router's walk. Measured with ``python -m bench api`` (``national,
    saturated``), those layers cost a tenth of the requests per second on the aggregate reads.
    """

    def __init__(self, app: ASGIApp, *, routes: list[Any]):
        self.app = app
        self.routes = [route for route in routes if isinstance(route, HotRoute)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    await route.app(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class _guarded:  # noqa: N801 - used as a function; a class, so that Starlette calls it as a plain ASGI app
    """The endpoint: the caller, then ``answer``; any exception is the routes' answer to it."""

    def __init__(self, state: AppState, answer: Callable[[AppState, Scope, Receive, Caller], Awaitable[Answer]]):
        self.state = state
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        try:
            client = scope.get("client")
            caller = await authenticate(state, _header(scope, b"authorization"), client[0] if client else None)
            status, headers, body = await self.answer(state, scope, receive, caller)
        except Exception as error:  # noqa: BLE001 - each becomes the answer the routes would give (else a logged 500)
            await response_for(error)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# -- aggregates ---------------------------------------------------------------------------


def _aggregate_target(state: AppState, scope: Scope) -> tuple[str, str, str] | None:
    if scope["method"] != "GET" or state.refresh_on_read:
        return None
    path: str = scope["path"]
    if not path.startswith("/v1/aggregates/"):
        return None
    query = scope["query_string"]
    fmt = FORMATS.get(query)
    parts = path[len("/v1/aggregates/") :].split("/")
    if fmt is None or parts[0] not in ("unofficial", "certified"):
        return None
    election = state.ledger_app.election
    if len(parts) == 2:
        if parts[1] in SINGLE and query == b"":
            return parts[0], SINGLE[parts[1]], fmt
        if parts[1] in LISTS:
            return parts[0], LISTS[parts[1]], fmt
    elif len(parts) == 3 and query == b"":
        if parts[1] == "provinces" and parts[2] in election.provinces:
            return parts[0], f"province:{parts[2]}", fmt
        if parts[1] == "constituencies" and parts[2] in election.constituencies:
            return parts[0], f"constituency:{parts[2]}", fmt
    return None


async def _aggregate(state: AppState, scope: Scope, _receive: Receive, _caller: Caller) -> Answer:
    view, resource, fmt = scope["tally_hot"]
    rendered = state.aggregates.view(view).rendered(resource, fmt)
    status, headers = aggregate_headers(rendered, _header(scope, b"if-none-match"))
    if status == 304:
        return 304, headers, b""
    body = rendered.body
    return 200, [(b"content-type", rendered.media_type.encode()), (b"content-length", str(len(body)).encode()), *headers], body


# -- submissions ----------------------------------------------------------------------------


def _tally_target(scope: Scope) -> bool | None:
    return True if scope["method"] == "POST" and not scope["query_string"] and scope["path"] == "/v1/tallies" else None


def _photo_target(scope: Scope) -> bool | None:
    if scope["method"] != "POST" or scope["query_string"] or scope["path"] != "/v1/photos":
        return None
    return True if 0 <= _content_length(scope) <= WHOLE_PHOTO_BYTES else None


async def _tally(state: AppState, scope: Scope, receive: Receive, caller: Caller) -> Answer:
    require_role(caller, REPORTERS)
    check_json_type(_header(scope, b"content-type"))
    submission = parse_json(await _read_body(receive))
    accepted = await state.ledger_app.submit_tally(caller, submission)
    if accepted.created:
        state.feed.notify()
    receipt = accepted.receipt
    body = orjson.dumps(receipt)
    location = f"/v1/records/{receipt['record_cid']}".encode("latin-1")
    return 201 if accepted.created else 200, _json_headers(body, location), body


async def _photo(state: AppState, scope: Scope, receive: Receive, caller: Caller) -> Answer:
    require_role(caller, VOLUNTEERS)
    check_photo_type(_header(scope, b"content-type"))
    info = await state.ledger_app.ingest_photo_bytes(bytes(await _read_body(receive, WHOLE_PHOTO_BYTES)))
    status, body, location = await photo_answer(state, caller, info)
    return status, _json_headers(body, location.encode("latin-1")), body


def _json_headers(body: bytes, location: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"location", location)]


# -- reading the request ------------------------------------------------------------------------


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
