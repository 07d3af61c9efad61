"""The newsroom feed: every accepted entry in order, as pages or as Server-Sent Events."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from api.deps import FEED_READERS, CallerDep, StateDep, access
from api.errors import BadRequestBody
from api.schemas import FeedItemPublic, FeedPagePublic
from api.state import AppState
from ledger.app import RateLimited
from ledger.core.strict import InvalidNumber, parse_decimal

router = APIRouter(prefix="/v1/feed", tags=["feed"])

MAX_CURSOR = 2**31 - 1
Cursor = Annotated[int, Query(ge=0, le=MAX_CURSOR, description="Return entries after this cursor (0: from the start)")]
View = Annotated[
    Literal["unofficial", "certified", "authority"],
    Query(
        description="unofficial: every accepted report and decision, labelled as such; certified: only units certified, "
        "excluded or reopened and constituencies certified, each certification with its numbers; authority: the "
        "authority log's grants and revocations (who may report, decide and certify)"
    ),
]
STREAM_PAGE = 500
STREAM_RETRY_AFTER = 10.0  # seconds a client past its cap of open streams is asked to wait


@router.get("", response_model=FeedPagePublic, **access(*FEED_READERS))
async def feed_page(
    state: StateDep, after: Cursor = 0, limit: Annotated[int, Query(ge=1, le=1000)] = 100, view: View = "unofficial"
) -> FeedPagePublic:
    """Entries accepted after ``after``, oldest first, at most ``limit``. Continue with
    ``after=next_cursor``; ``has_more`` says whether to ask again at once."""
    items, next_cursor = await run_in_threadpool(state.ledger.changes, after=after, limit=limit, view=view)
    return FeedPagePublic(items=[FeedItemPublic(**item) for item in items], next_cursor=next_cursor, has_more=len(items) == limit)


def parse_cursor(text: str, *, path: tuple[str, ...]) -> int:
    """A cursor sent as text (``Last-Event-ID``), by the strict rule: canonical ASCII digits
    up to 2**31 - 1; anything else is refused (422) naming where it was sent."""
    try:
        cursor = parse_decimal(text, what="cursor", max_digits=10)
    except InvalidNumber as refused:
        raise BadRequestBody(f"{refused}; send the id of the last event received", path=path) from None
    if cursor > MAX_CURSOR:
        raise BadRequestBody(f"the cursor must be at most {MAX_CURSOR}, got {cursor}", path=path)
    return cursor


def _event(item: dict[str, Any]) -> bytes:
    return b"id: %d\nevent: entry\ndata: %s\n\n" % (item["cursor"], orjson.dumps(item))


async def _events(
    state: AppState, request: Request, after: int, max_events: int | None, timeout: float | None, view: str = "unofficial"
) -> AsyncIterator[bytes]:
    state.feed.streams += 1
    try:
        async for chunk in _event_stream(state, request, after, max_events, timeout, view):
            yield chunk
    finally:
        state.feed.streams -= 1


async def _event_stream(
    state: AppState, request: Request, after: int, max_events: int | None, timeout: float | None, view: str = "unofficial"
) -> AsyncIterator[bytes]:
    settings = state.settings
    started = last_write = time.monotonic()
    sent = 0
    cursor = after
    yield b"retry: 2000\n\n"
    while True:
        generation = state.feed.generation
        items, cursor = await run_in_threadpool(state.ledger.changes, after=cursor, limit=STREAM_PAGE, view=view)
        for item in items:
            yield _event(item)
            sent += 1
            if max_events is not None and sent >= max_events:
                return
        if items:
            last_write = time.monotonic()
            if len(items) == STREAM_PAGE:
                continue
        now = time.monotonic()
        if timeout is not None and now - started >= timeout:
            return
        if await request.is_disconnected():
            return
        wait = min(settings.feed_poll_seconds, max(0.0, settings.feed_heartbeat_seconds - (now - last_write)))
        if timeout is not None:
            wait = min(wait, max(0.0, timeout - (now - started)))
        if not await state.feed.wait(generation, wait) and time.monotonic() - last_write >= settings.feed_heartbeat_seconds:
            yield b": heartbeat\n\n"
            last_write = time.monotonic()


@router.get(
    "/stream",
    response_class=StreamingResponse,
    **access(
        *FEED_READERS,
        responses={
            200: {
                "description": "text/event-stream: one 'entry' event per accepted entry (id = its cursor, "
                "data = the feed item as JSON), and ': heartbeat' comments when quiet",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        },
    ),
)
async def feed_stream(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    after: Cursor = 0,
    last_event_id: Annotated[
        str | None, Header(description="Resume after this event id (sent by EventSource on reconnect)")
    ] = None,
    max_events: Annotated[int | None, Query(ge=1, le=1_000_000, description="End the stream after this many events")] = None,
    timeout: Annotated[float | None, Query(gt=0, le=86_400, description="End the stream after this many seconds")] = None,
    view: View = "unofficial",
) -> StreamingResponse:
    """Server-Sent Events of every entry accepted after ``after`` (or ``Last-Event-ID``,
    which wins), then live as they arrive. Heartbeats every
    ``TALLY_FEED_HEARTBEAT_SECONDS`` of quiet; the stream ends when the client goes away,
    or after ``max_events`` events or ``timeout`` seconds when given. A key may hold
    ``TALLY_FEED_MAX_STREAMS_PER_KEY`` streams at once and a client address
    ``TALLY_FEED_MAX_STREAMS_PER_IP``; one more gets 429 with Retry-After."""
    if last_event_id:  # EventSource sends none (or an empty one) before its first event
        after = parse_cursor(last_event_id, path=("header", "Last-Event-ID"))
    settings = state.settings
    client_ip = request.client.host if request.client else "unknown"
    slots = state.feed.slots
    full = slots.take(
        caller.rate_key, client_ip, per_caller=settings.feed_max_streams_per_key, per_ip=settings.feed_max_streams_per_ip
    )
    if full is not None:
        raise RateLimited(f"{full}; close one, or page with GET /v1/feed", retry_after=STREAM_RETRY_AFTER)
    return _HeldStream(
        _events(state, request, after, max_events, timeout, view),
        release=lambda: slots.give_back(caller.rate_key, client_ip),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class _HeldStream(StreamingResponse):
    """A stream that gives its slot back when it ends, however it ends (the client left,
    the stream finished, or it failed before its first event)."""

    def __init__(self, content: AsyncIterator[bytes], *, release: Callable[[], None], **kwargs: Any):
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
