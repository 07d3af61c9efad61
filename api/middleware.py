"""ASGI middleware at the very edge: request bodies are limited while they stream.

``BodyLimit`` wraps the app's ``receive``: it refuses a body over its route's limit
(``TALLY_MAX_PHOTO_BYTES`` for ``POST /v1/photos``, ``TALLY_MAX_JSON_BYTES`` elsewhere)
from its Content-Length before reading it, and, for a body without one (chunked), as
soon as the bytes received pass the limit; and it refuses a body that arrives too slowly
(``TALLY_BODY_IDLE_TIMEOUT_SECONDS`` between two pieces, ``TALLY_BODY_READ_TIMEOUT_SECONDS``
for the whole body). Either way the rest of the body is never read: the answer is 413 or
408 with the usual error body and ``Connection: close``, whatever the app was doing.

Slow *headers* are not seen here: uvicorn hands a request to the app only once its
headers are complete, and has no timeout for them. In production a reverse proxy
(``deploy/nginx.conf``: ``client_header_timeout``) cuts those off.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BadRequestBody, error_body
from ledger.core.strict import is_canonical_decimal

__all__ = ["BodyLimit", "BodyRefused"]

PHOTO_PATH = "/v1/photos"


class BodyRefused(BadRequestBody):
    """The body passed its route's limit (413) or came too slowly (408). A ``LedgerError``,
    so an app that catches it answers the same; ``BodyLimit`` answers it in any case."""

    def __init__(self, message: str, *, status: int, kind: str):
        self.kind = kind
        super().__init__(message, status=status, path=())


class BodyLimit:
    def __init__(self, app: ASGIApp, *, photo_limit: int, json_limit: int, idle_timeout: float, read_timeout: float):
        self.app = app
        self.photo_limit = photo_limit
        self.json_limit = json_limit
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout

    def _limit(self, scope: Scope) -> tuple[int, str]:
        if scope["path"] == PHOTO_PATH:
            return self.photo_limit, "photo_too_large"
        return self.json_limit, "body_too_large"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, kind = self._limit(scope)
        for name, value in scope["headers"]:
            if name == b"content-length":
                text = value.decode("latin-1")
                if not is_canonical_decimal(text) or int(text) > limit:
                    await _send_error(
                        send, BodyRefused(f"the body is {text} bytes; the limit here is {limit} bytes", status=413, kind=kind)
                    )
                    return
                break
        refused: BodyRefused | None = None
        received = 0
        started = time.monotonic()
        response_started = False
        body_done = False

        async def limited_receive() -> Message:
            nonlocal refused, received, body_done
            if refused is not None:
                raise refused
            if body_done:  # what follows is http.disconnect, which streams wait for as long as they run
                return await receive()
            left = self.read_timeout - (time.monotonic() - started)
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, min(self.idle_timeout, left)))
            except TimeoutError:
                refused = BodyRefused(
                    f"the body came too slowly: send it within {self.read_timeout:g} s, with no pause over "
                    f"{self.idle_timeout:g} s",
                    status=408,
                    kind="body_timeout",
                )
                raise refused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = BodyRefused(f"the body is larger than {limit} bytes, the limit here", status=413, kind=kind)
                    raise refused
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused is not None and not response_started:
                return  # the app's own answer to the refusal: ours is sent instead
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyRefused:
            if refused is None:
                raise
        if refused is not None and not response_started:
            await _send_error(send, refused)


async def _send_error(send: Send, refused: BodyRefused) -> None:
    body = error_body(refused.kind, [{"path": [], "message": str(refused)}])
    await send(
        {
            "type": "http.response.start",
            "status": refused.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
