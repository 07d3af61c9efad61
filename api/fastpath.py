"""The hot read path: aggregate answers straight from their stored bytes.

Election night means thousands of readers polling the same few documents. This ASGI
middleware answers ``GET /v1/aggregates/{view}/{resource}`` (no query, or ``format=json``
/ ``format=csv`` where the route takes it) with the stored bytes and ETag of
``api.routes.aggregates.rendered``, after the same authentication and rate limit as every
route (``ledger.access``), skipping routing and dependency resolution. Anything it does not
recognise exactly (another query, an unknown id, a key that is not cached yet, a view that
must be refreshed on read) goes on to the FastAPI routes, which are the reference behaviour
and what the OpenAPI document describes.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import bearer_token
from api.errors import ledger_error_response
from api.routes.aggregates import matches_etag, rendered
from api.state import AppState
from ledger.access import RateLimited, Unauthenticated
from ledger.errors import LedgerError

__all__ = ["AggregatesFastPath"]

PREFIX = "/v1/aggregates/"
LISTS = {"provinces": "provinces", "constituencies": "constituencies", "party-list": "party_list"}
SINGLE = {"national": "national", "house": "house"}
FORMATS = {b"": "json", b"format=json": "json", b"format=csv": "csv"}


class AggregatesFastPath:
    def __init__(self, app: ASGIApp, *, state: AppState):
        self.app = app
        self.state = state

    def _target(self, path: str, query: bytes) -> tuple[str, str, str] | None:
        parts = path[len(PREFIX):].split("/")
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
        if (scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith(PREFIX)
                or self.state.refresh_on_read):
            await self.app(scope, receive, send)
            return
        target = self._target(scope["path"], scope["query_string"])
        if target is None:
            await self.app(scope, receive, send)
            return
        authorization = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
        client = scope.get("client")
        client_ip = client[0] if client else None
        state = self.state
        try:
            caller = state.access.peek(bearer_token(authorization), client_ip=client_ip)
        except Unauthenticated as refused:
            error: LedgerError = refused
            try:
                state.limiter.admit(state.access.anonymous(client_ip))  # failed attempts count against the IP
            except RateLimited as limited:
                error = limited
            await ledger_error_response(error)(scope, receive, send)
            return
        if caller is None:  # the key must be looked up in the database: the routes do that off the event loop
            await self.app(scope, receive, send)
            return
        try:
            state.limiter.admit(caller)
        except RateLimited as limited:
            await ledger_error_response(limited)(scope, receive, send)
            return
        view, resource, fmt = target
        answer = rendered(state, view, resource, fmt)
        if matches_etag(if_none_match, answer.etag):
            await send({"type": "http.response.start", "status": 304, "headers": answer.not_modified_headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": answer.raw_headers})
        await send({"type": "http.response.body", "body": answer.body})
