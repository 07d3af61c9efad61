"""Aggregates: national, provincial and constituency results, party-list seats, the House.

Open data: everyone may read them (newsroom and auditor keys get higher rate limits).
Answers are rendered once per change of the view and served as the view's stored bytes
(``AggregateView.rendered``) with their content-derived ETag (``If-None-Match`` → 304).
Lists are also CSV (``?format=csv``). The hot requests are answered by ``api.routes.hot``
from the same bytes, before these routes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from api.deps import EVERYONE, AreaPath, StateDep, access
from api.schemas import (
    ConstituencyResultPublic,
    HouseResultPublic,
    NationalResultPublic,
    PartyListResultPublic,
    ProvinceResultPublic,
)
from api.state import AppState
from ledger.views import RenderedAggregate

router = APIRouter(prefix="/v1/aggregates", tags=["aggregates"])


class ViewName(StrEnum):
    unofficial = "unofficial"
    certified = "certified"


ViewPath = Annotated[ViewName, Path(description="unofficial: the latest report of every unit; certified: certified units only")]
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]
IfNoneMatch = Annotated[str | None, Header(include_in_schema=False)]

CACHE_CONTROL = b"public, max-age=1"
NOT_MODIFIED = {304: {"description": "Not modified: the ETag sent in If-None-Match is current"}}


WITH_CSV = {
    **NOT_MODIFIED,
    200: {"description": "The aggregate; with format=csv a CSV table", "content": {"text/csv": {"schema": {"type": "string"}}}},
}


def matches_etag(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def aggregate_headers(rendered: RenderedAggregate, if_none_match: str | None) -> tuple[int, list[tuple[bytes, bytes]]]:
    """The status (200, or 304 when ``If-None-Match`` holds the current ETag) and the raw
    headers of an aggregate answer, besides its content type and length (the routes here
    and the hot route of ``api.routes.hot`` send the same)."""
    etag = rendered.etag.encode("latin-1")
    if matches_etag(if_none_match, rendered.etag):
        return 304, [(b"etag", etag), (b"cache-control", CACHE_CONTROL)]
    headers = [
        (b"tally-view", rendered.view.encode("latin-1")),
        (b"tally-computed-at", rendered.computed_at.encode("latin-1")),
        (b"cache-control", CACHE_CONTROL),
    ]
    if rendered.filename is not None:
        headers.append((b"content-disposition", f'attachment; filename="{rendered.filename}"'.encode("latin-1")))
        headers.append((b"tally-units-reporting", str(rendered.units_reporting).encode("latin-1")))
    headers.append((b"etag", etag))
    return 200, headers


async def serve(state: AppState, view_name: ViewName, resource: str, fmt: str, if_none_match: str | None) -> Response:
    if state.refresh_on_read:
        await run_in_threadpool(state.aggregates.refresh)
    rendered = state.aggregates.view(view_name.value).rendered(resource, fmt)
    status, headers = aggregate_headers(rendered, if_none_match)
    response = Response(status_code=304) if status == 304 else Response(rendered.body, media_type=rendered.media_type)
    response.raw_headers.extend(headers)
    return response


@router.get("/{view}/national", response_model=NationalResultPublic, **access(*EVERYONE, responses=NOT_MODIFIED))
async def national(view: ViewPath, state: StateDep, if_none_match: IfNoneMatch = None) -> Response:
    """National progress: units reporting, ballots cast, turnout."""
    return await serve(state, view, "national", "json", if_none_match)


@router.get("/{view}/provinces", response_model=list[ProvinceResultPublic], **access(*EVERYONE, responses=WITH_CSV))
async def provinces(view: ViewPath, state: StateDep, format: Format = "json", if_none_match: IfNoneMatch = None) -> Response:
    """Every province's progress and turnout."""
    return await serve(state, view, "provinces", format, if_none_match)


@router.get(
    "/{view}/provinces/{province_id}",
    response_model=ProvinceResultPublic,
    **access(*EVERYONE, errors=(404,), responses=NOT_MODIFIED),
)
async def province(view: ViewPath, province_id: AreaPath, state: StateDep, if_none_match: IfNoneMatch = None) -> Response:
    """One province (id as in ``GET /v1/election``, e.g. BKK)."""
    state.aggregates.view(view.value).province(province_id)  # unknown → 404 before anything is cached
    return await serve(state, view, f"province:{province_id}", "json", if_none_match)


@router.get("/{view}/constituencies", response_model=list[ConstituencyResultPublic], **access(*EVERYONE, responses=WITH_CSV))
async def constituencies(view: ViewPath, state: StateDep, format: Format = "json", if_none_match: IfNoneMatch = None) -> Response:
    """Every constituency: candidates by votes, leader, margin, ties, turnout."""
    return await serve(state, view, "constituencies", format, if_none_match)


@router.get(
    "/{view}/constituencies/{constituency_id}",
    response_model=ConstituencyResultPublic,
    **access(*EVERYONE, errors=(404,), responses=NOT_MODIFIED),
)
async def constituency(view: ViewPath, constituency_id: AreaPath, state: StateDep, if_none_match: IfNoneMatch = None) -> Response:
    """One constituency (e.g. BKK_1)."""
    state.ledger_app.election.constituency(constituency_id)
    return await serve(state, view, f"constituency:{constituency_id}", "json", if_none_match)


@router.get("/{view}/party-list", response_model=PartyListResultPublic, **access(*EVERYONE, responses=WITH_CSV))
async def party_list(view: ViewPath, state: StateDep, format: Format = "json", if_none_match: IfNoneMatch = None) -> Response:
    """National party-list votes and the seat allocation (largest remainder, 100 seats;
    ties at the cut-off are reported, never drawn)."""
    return await serve(state, view, "party_list", format, if_none_match)


@router.get("/{view}/house", response_model=HouseResultPublic, **access(*EVERYONE, responses=NOT_MODIFIED))
async def house(view: ViewPath, state: StateDep, if_none_match: IfNoneMatch = None) -> Response:
    """The projected House of 500: constituency leaders plus party-list seats; undecided
    seats are counted, never guessed."""
    return await serve(state, view, "house", "json", if_none_match)
