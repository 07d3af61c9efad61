"""What volunteers send: photos (streamed) and signed tallies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import EVERYONE, VOLUNTEERS, CallerDep, CidPath, StateDep, access, read_json
from api.schemas import PhotoPublic, TallyCreate, TallyReceiptPublic
from api.state import AppState
from ledger.app import SIGNED_IN_ROLES, Accepted, Caller, PhotoInfo, UnsupportedPhotoType
from ledger.core.cid import CID
from ledger.core.strict import is_canonical_decimal
from ledger.views import PhotoView

router = APIRouter(prefix="/v1", tags=["submissions"])
REPORTERS = SIGNED_IN_ROLES
"""Unit volunteers report their units; heads and the war room enter corrected tallies."""
T = TypeVar("T")
WHOLE_PHOTO_BYTES = 1 << 20
"""Uploads up to this size (by Content-Length) are read whole and ingested in one step; for
them, handing each piece of the stream to a thread cost more than hashing it. Larger
ones stream: their CID is computed piece by piece as they arrive, never held whole."""


TALLY_BODY = {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TallyCreate"}}}}
"""The body is read by the ledger's own validation (every error at once, with field paths);
``TallyCreate`` documents it and is added to the OpenAPI components by ``api.main``."""
EXTRA_SCHEMAS = (TallyCreate,)

PHOTO_BODY = {
    "required": True,
    "content": {
        media: {"schema": {"type": "string", "format": "binary"}}
        for media in ("image/jpeg", "image/png", "image/heic", "application/octet-stream")
    },
}


def photo_public(photo: PhotoView, caller: Caller, *, reviewer: bool = False) -> PhotoPublic:
    """The photo's metadata as ``caller`` may see it: the uploader only for the uploader and,
    with ``reviewer``, for one who judges the reports it was used for
    (``ReviewService.may_see_uploader``)."""
    exif = dict(photo.exif)
    gps = exif.get("gps") if isinstance(exif.get("gps"), dict) else None
    taken_at = exif.get("taken_at") if isinstance(exif.get("taken_at"), str) else None
    shown = reviewer or (caller.address is not None and caller.address == photo.uploader)
    return PhotoPublic(
        cid=photo.cid,
        size=photo.size,
        media_type=photo.media_type,
        width=photo.width,
        height=photo.height,
        taken_at=taken_at,
        gps=gps,
        exif=exif,
        uploaded_at=photo.uploaded_at,
        uploader=photo.uploader if shown else None,
    )


async def _in_thread_reading(stream: AsyncIterator[bytes], work: Callable[[Iterator[bytes]], T]) -> T:
    """Run ``work`` on a worker thread, feeding it ``stream`` as a blocking iterator."""

    async def next_piece() -> bytes:
        return await stream.__anext__()

    def pieces() -> Iterator[bytes]:
        while True:
            try:
                piece = anyio.from_thread.run(next_piece)
            except StopAsyncIteration:
                return
            if piece:
                yield piece

    return await anyio.to_thread.run_sync(work, pieces())


@router.post(
    "/photos",
    status_code=201,
    response_model=PhotoPublic,
    **access(
        *VOLUNTEERS,
        errors=(413, 415),
        openapi_extra={"requestBody": PHOTO_BODY},
        responses={
            200: {"model": PhotoPublic, "description": "The same bytes were uploaded before: same CID, nothing stored again"},
        },
    ),
)
async def upload_photo(request: Request, caller: CallerDep, state: StateDep) -> Any:
    """Upload one photo as the raw request body (``Content-Type: image/jpeg``, ``image/png``,
    ``image/heic`` or ``application/octet-stream``; not multipart). The type is decided from
    the bytes; its CID (as ``ipfs add --cid-version=1``) is computed while it streams (an
    upload of up to 1 MiB is read whole first), and its EXIF time and place are kept as
    metadata. 201 the first time, 200 with the same answer when the same bytes come again.
    Limit: ``TALLY_MAX_PHOTO_BYTES`` (413). 422 when the content does not parse as its type
    or is too small to be a photo, when its header declares more than ``TALLY_MAX_PHOTO_PIXELS``
    or a side over ``TALLY_MAX_PHOTO_SIDE`` (nothing is decoded), and when it carries tags
    that identify a person or device (owner, serial numbers, artist, maker notes: the app
    must strip them; time, GPS and orientation are kept). README, "What is public"."""
    check_photo_type(request.headers.get("content-type"))
    app = state.ledger_app
    length = request.headers.get("content-length", "")
    if is_canonical_decimal(length) and int(length) <= WHOLE_PHOTO_BYTES:  # ('²'.isdigit() is true, int('²') fails)
        info = await app.ingest_photo_bytes(await request.body())
    else:
        info = await _in_thread_reading(request.stream().__aiter__(), app.ingest_photo_stream)
    status, body, location = await photo_answer(state, caller, info)
    return Response(body, status_code=status, media_type="application/json", headers={"Location": location})


def check_photo_type(header: str | None) -> None:
    """A photo is sent as its own bytes; a multipart form is refused (415)."""
    content_type = ("application/octet-stream" if header is None else header).split(";")[0].strip().lower()
    if content_type.startswith("multipart/"):
        raise UnsupportedPhotoType("a multipart form; send the photo's bytes themselves as the body")


async def photo_answer(state: AppState, caller: Caller, info: PhotoInfo) -> tuple[int, bytes, str]:
    """What ``POST /v1/photos`` answers once the photo is stored, for the route and for
    ``api.routes.hot``: status, JSON body and Location."""
    photo, created = await state.ledger_app.record_photo(info, caller.address)
    body = orjson.dumps(photo_public(photo, caller).model_dump(mode="json"))
    return 201 if created else 200, body, f"/v1/content/{photo.cid}"


@router.get("/photos/{cid}", response_model=PhotoPublic, **access(*EVERYONE, errors=(404,)))
async def photo_metadata(cid: CidPath, state: StateDep, caller: CallerDep) -> PhotoPublic:
    """What is known of an uploaded photo: size, type, pixels, EXIF time and place. Who
    uploaded it only for the uploader, the war room, admins and the heads of a constituency
    whose report used it (the rule of the unit review). The bytes are at ``GET /v1/content/{cid}``."""
    canonical = str(CID.parse(cid))

    def read() -> PhotoPublic:
        photo = state.ledger_app.photo(canonical)
        return photo_public(photo, caller, reviewer=state.review.may_see_uploader(caller, canonical))

    return await run_in_threadpool(read)


@router.post(
    "/tallies",
    status_code=201,
    response_model=TallyReceiptPublic,
    **access(
        *REPORTERS,
        errors=(409, 413, 415),
        openapi_extra={"requestBody": TALLY_BODY},
        responses={
            200: {"model": TallyReceiptPublic, "description": "A retry of an accepted submission: the same receipt"},
        },
    ),
)
async def submit_tally(request: Request, caller: CallerDep, state: StateDep) -> Any:
    """Submit a signed tally (``TallyCreate``; ``wallets.tally_client.sign_tally`` signs one).
    201 with the ledger's signed receipt; a retry with the same submission id and content
    gets 200 and the same receipt; the same submission id with other content is 409;
    every problem with the tally is listed in one 422 with its field path. The record's
    ``submitter`` must be the signed-in volunteer (else 403)."""
    accepted = await state.ledger_app.submit_tally(caller, await read_json(request))
    if accepted.created:
        state.feed.notify()
    return receipt_response(accepted)


def receipt_response(accepted: Accepted) -> Response:
    """A receipt answer: 201 for a new entry, 200 for a retry, with the record's Location."""
    receipt = accepted.receipt
    return Response(
        orjson.dumps(receipt),
        status_code=201 if accepted.created else 200,
        media_type="application/json",
        headers={"Location": f"/v1/records/{receipt['record_cid']}"},
    )
