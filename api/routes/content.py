"""Raw content by CID: photos, records, manifests, as bytes or as a CAR file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import EVERYONE, CidPath, StateDep, access
from ledger.core.cid import CID, DAG_CBOR, DAG_PB, RAW
from ledger.errors import BlockNotFound, InvalidCID, NotFound

router = APIRouter(prefix="/v1", tags=["content"])

CONTENT_RESPONSES = {
    200: {
        "description": "The content: a file's bytes (photos, manifests), a DAG-CBOR block (records) or a CAR v1 file",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/vnd.ipld.dag-cbor": {"schema": {"type": "string", "format": "binary"}},
            "application/vnd.ipld.car": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    304: {"description": "Not modified (If-None-Match matched; content never changes)"},
}
IMMUTABLE = "public, max-age=31536000, immutable"


@router.get("/content/{cid}", response_class=Response, **access(*EVERYONE, errors=(404,), responses=CONTENT_RESPONSES))
async def get_content(
    cid: CidPath,
    state: StateDep,
    format: Annotated[Literal["raw", "car"], Query(description="raw: the bytes; car: a CAR v1 with every linked block")] = "raw",
    if_none_match: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Content by CID, every block checked against its hash as it is read. ``raw`` gives a
    file's bytes (UnixFS: photos, batch manifests) or a block as it is (DAG-CBOR: records);
    ``car`` gives a CAR v1 file of the root and everything it links to (a record takes its
    photos along), for ``ipfs dag import``."""
    root = CID.parse(cid)
    content = state.ledger_app.content
    etag = f'"{root}.{format}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"}
    if not await run_in_threadpool(content.has_block, root):
        raise BlockNotFound(f"no content {root} in this ledger")
    if if_none_match is not None and etag in if_none_match:
        return Response(status_code=304, headers=headers)
    if format == "car":
        headers["Content-Disposition"] = f'attachment; filename="{root}.car"'
        return StreamingResponse(state.ledger_app.car(root), media_type="application/vnd.ipld.car", headers=headers)
    if root.codec == DAG_CBOR:
        block = await run_in_threadpool(content.get_block, root)
        return Response(block, media_type="application/vnd.ipld.dag-cbor", headers=headers)
    if root.codec not in (RAW, DAG_PB):
        raise InvalidCID(f"{root} is a {root.codec_name} block; ask for it with ?format=car")
    media_type = "application/octet-stream"
    try:
        media_type = (await run_in_threadpool(state.ledger_app.photo, str(root))).media_type
    except NotFound:
        pass
    pieces = content.cat(root)
    first = await run_in_threadpool(next, pieces, b"")  # a malformed file fails here, before the headers go out

    def stream() -> Iterator[bytes]:
        yield first
        yield from pieces

    return StreamingResponse(stream(), media_type=media_type, headers=headers)
