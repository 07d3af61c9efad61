"""The one place where errors become HTTP answers.

Every error answer has the same JSON body (``ErrorPublic`` in ``api/schemas.py``)::

    {"error": "invalid_tally",
     "errors": [{"path": ["party_list", "votes", "99"], "message": "there is no party number 99 …"}]}

``error`` names the kind (the exception class in snake case); each item of ``errors`` says
where (``path``, empty for the request as a whole) and what. Statuses, most specific first
(the error's class hierarchy is walked, so a new ``LedgerError`` falls back on its builtin):

    InvalidTally, InvalidCID, InvalidEncoding, InvalidSignature,
    InvalidSeatInput, InvalidScope, InvalidNumber,
    request validation                                   → 422
    malformed Authorization header, bad or expired token → 401 (WWW-Authenticate: Bearer)
    Forbidden (wrong role, level, organisation or
    assignment; submitter ≠ session)                     → 403
    NotFound, unknown route                              → 404
    ConflictingSubmission, AlreadyExists, DecisionRefused → 409
    body too large, PhotoTooLarge                        → 413
    UnsupportedPhotoType                                 → 415
    RateLimited                                          → 429 (Retry-After)
    ChainError, ContentStoreError, KeystoreError,
    database unavailable                                 → 503 (Retry-After)
    anything else                                        → 500, logged; never an HTML page
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from ledger.app import (
    InvalidScope,
    InvalidSeatInput,
    PhotoTooLarge,
    RateLimited,
    Unauthenticated,
    UnsupportedPhotoType,
)
from ledger.core.decision import DecisionRefused
from ledger.core.strict import InvalidNumber
from ledger.errors import (
    AlreadyExists,
    ChainError,
    ConflictingSubmission,
    ContentStoreError,
    Forbidden,
    InvalidCID,
    InvalidEncoding,
    InvalidProof,
    InvalidSignature,
    InvalidTally,
    KeystoreError,
    LedgerError,
    NotFound,
)

__all__ = ["BadRequestBody", "error_body", "error_response", "install_error_handlers", "response_for", "status_for"]

log = logging.getLogger("tally.api")


class BadRequestBody(LedgerError, ValueError):
    """The request body is not what the endpoint reads (not JSON, too large, wrong type)."""

    def __init__(self, message: str, *, status: int = 422, path: tuple[str | int, ...] = ("body",)):
        self.status = status
        self.path = path
        super().__init__(message)


STATUS_BY_ERROR: dict[type[BaseException], int] = {
    InvalidTally: 422,
    InvalidCID: 422,
    InvalidEncoding: 422,
    InvalidSignature: 422,
    InvalidSeatInput: 422,
    InvalidScope: 422,
    InvalidNumber: 422,  # a number sent as text that is not canonical ASCII digits (ledger.core.strict)
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    ConflictingSubmission: 409,
    AlreadyExists: 409,  # an organisation id or a person's address is taken
    DecisionRefused: 409,  # the decision breaks the rules in the unit's current state
    PhotoTooLarge: 413,
    UnsupportedPhotoType: 415,
    RateLimited: 429,
    ChainError: 503,
    ContentStoreError: 503,
    KeystoreError: 503,
    InvalidProof: 500,  # our own data failed its check: a server fault
    # Fallbacks for any other LedgerError, by the builtin it also is:
    LookupError: 404,
    PermissionError: 403,
    ValueError: 422,
    ConnectionError: 503,
    OSError: 503,
}


def status_for(error: BaseException) -> int:
    if isinstance(error, BadRequestBody):
        return error.status
    for cls in type(error).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return 500


def _kind(error: BaseException) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


def error_body(kind: str, items: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"error": kind, "errors": items})


def error_response(status: int, kind: str, items: list[dict[str, Any]], headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(kind, items), status_code=status, media_type="application/json", headers=headers)


def _items(error: BaseException) -> list[dict[str, Any]]:
    if isinstance(error, InvalidTally):
        return [item.as_dict() for item in error.errors]
    path = getattr(error, "path", ())
    return [{"path": list(path) if isinstance(path, tuple) else [], "message": str(error)}]


def ledger_error_response(error: BaseException) -> Response:
    status = status_for(error)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    elif status == 503:
        headers["Retry-After"] = "5"
    if status >= 500:
        log.error("%s answered %s: %s", type(error).__name__, status, error)
        if status == 500:
            return error_response(500, "internal_error", [{"path": [], "message": "the server failed; it has been logged"}])
    return error_response(status, _kind(error), _items(error), headers)


def _validation_path(location: tuple[Any, ...]) -> list[str | int]:
    parts = list(location)
    if parts and parts[0] == "body":
        parts = parts[1:] or ["body"]
    return [part if isinstance(part, (str, int)) else str(part) for part in parts]


async def _on_validation_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    items = []
    for problem in error.errors():
        message = str(problem.get("msg", "is not valid"))
        if problem.get("type") == "json_invalid":
            message = f"the body is not valid JSON ({problem.get('ctx', {}).get('error', 'syntax error')})"
        items.append({"path": _validation_path(tuple(problem.get("loc", ()))), "message": message})
    return error_response(422, "invalid_request", items)


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] != Match.NONE:
            methods.update(route_methods)
    return ", ".join(sorted(methods))


async def _on_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    kinds = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 400: "bad_request"}
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    message = str(error.detail)
    if error.status_code == 400 and "parsing the body" in message:  # FastAPI's words for a body it could not decode
        return error_response(422, "invalid_request", [{"path": ["body"], "message": "the body is not valid UTF-8 JSON"}])
    if error.status_code == 404 and message == "Not Found":
        message = "no such endpoint; the API is described at /openapi.json"
    return error_response(
        error.status_code, kinds.get(error.status_code, "http_error"), [{"path": [], "message": message}], headers
    )


def _database_unavailable(error: Exception) -> Response:
    log.error("database error: %s", error)
    return error_response(
        503,
        "database_unavailable",
        [{"path": [], "message": "the database is not answering; retry shortly"}],
        {"Retry-After": "5"},
    )


def _data_error(error: Exception) -> Response:
    log.warning("database refused a value: %s", error)
    return error_response(422, "invalid_value", [{"path": [], "message": "a value in the request is out of range or malformed"}])


def _client_disconnect(_error: Exception) -> Response:
    return error_response(400, "client_disconnected", [{"path": [], "message": "the client closed the connection mid-request"}])


def _unexpected(error: Exception) -> Response:
    log.exception("unexpected error", exc_info=error)
    return error_response(500, "internal_error", [{"path": [], "message": "the server failed; it has been logged"}])


HANDLERS: tuple[tuple[type[Exception], Any], ...] = (
    (LedgerError, ledger_error_response),
    (OperationalError, _database_unavailable),
    (DataError, _data_error),
    (ClientDisconnect, _client_disconnect),
    (Exception, _unexpected),
)
"""What each kind of error raised while answering becomes (the first class that matches)."""


def response_for(error: Exception) -> Response:
    """The answer the installed handlers give to ``error`` raised by an endpoint; for the
    plain ASGI endpoints of the hot routes (``api.routes.hot``), which catch their own."""
    for cls, handle in HANDLERS:
        if isinstance(error, cls):
            return handle(error)  # type: ignore[no-any-return]
    return _unexpected(error)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for cls, handle in HANDLERS:
        app.add_exception_handler(cls, _handler(handle))


def _handler(handle: Any) -> Any:
    async def on_error(_request: Request, error: Exception) -> Response:
        return handle(error)  # type: ignore[no-any-return]

    return on_error
