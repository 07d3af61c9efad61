"""The HTTP service: ``create_app()`` builds it; ``tally serve`` runs it under uvicorn.

Endpoints and the roles that may call them (also in the OpenAPI document, ``x-roles``):

    POST   /v1/auth/challenge                      everyone        ask for a volunteer sign-in message
    POST   /v1/auth/session                        everyone        signed challenge → volunteer session token
    GET    /v1/auth/whoami                         everyone
    POST   /v1/admin/principals                    admin           make an API key (shown once)
    GET    /v1/admin/principals                    admin
    DELETE /v1/admin/principals/{id}               admin           revoke a key
    POST   /v1/admin/volunteers                    admin           register a volunteer address
    GET    /v1/admin/volunteers                    admin
    DELETE /v1/admin/volunteers/{address}          admin
    POST   /v1/photos                              volunteer       raw image body, streamed
    GET    /v1/photos/{cid}                        everyone        photo metadata (EXIF time and place)
    POST   /v1/tallies                             volunteer       signed tally → signed receipt
    GET    /v1/records/{cid}                       everyone
    GET    /v1/units/{unit_id}/records             everyone
    GET    /v1/proofs/{cid}                        everyone        tally-proof-v1: pending, sealed or anchored
    GET    /v1/units/{unit_id}/proofs              everyone
    GET    /v1/batches, /v1/batches/{id}           everyone
    GET    /v1/batches/{id}/oz-dump                everyone        @openzeppelin/merkle-tree standard-v1 dump
    GET    /v1/content/{cid}?format=raw|car        everyone        verified bytes or a CAR file
    GET    /v1/election                            everyone
    GET    /v1/election/constituencies/{id}        everyone
    GET    /v1/health                              everyone
    GET    /v1/ready                               everyone        entries set aside (quarantined), if any
    GET    /v1/aggregates/{view}/…                 everyone        national, provinces[/{id}], constituencies[/{id}],
                                                                   party-list, house; ETag/304; ?format=csv for lists
    GET    /v1/feed, /v1/feed/stream               newsroom, war_room, admin

"everyone" includes anonymous callers (the public, auditors without a key); roles with
keys only get higher rate limits there.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse

from api.deps import reject_unknown_query
from api.errors import install_error_handlers
from api.middleware import BodyLimit
from api.routes import (
    admin,
    aggregates,
    auth,
    authority,
    content,
    custodial,
    election,
    feed,
    hot,
    records,
    review,
    submissions,
)
from api.state import AppState
from ledger.errors import NotFound
from ledger.runtime import Runtime
from ledger.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("tally.api")

DESCRIPTION = """\
Tally Ledger reports Thailand's general election of 14 May 2023 unofficially, in real time,
and proves every number: each tally is a signed record whose CID is its identity, sealed into
Merkle batches anchored on chain.

**Credentials**: `Authorization: Bearer <token>`, an API key (`tly_…`, made by an admin) or a
volunteer session (`tvs2.…`, from `POST /v1/auth/challenge` then `POST /v1/auth/session`).
Without credentials you are `anonymous`, which may read all open data.

**Errors** always have the body `{"error": kind, "errors": [{"path": [...], "message": ...}]}`.
Unknown query parameters are refused (422), so a typo never passes silently.
**Rate limits** are per key, per volunteer, or per client IP; 429 carries `Retry-After`.
"""


SWAGGER_UI_DIST = Path(__file__).resolve().parent.parent / "node_modules" / "swagger-ui-dist"
"""Swagger UI, pinned in package.json (``swagger-ui-dist``) and installed by scripts/setup.sh."""
DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def _install_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI over ``/openapi.json``, every asset served from this host under
    ``/docs/static/`` (no CDN: the page works offline, and no third party learns who reads
    it). Swagger UI's online validator is switched off for the same reason."""
    if not SWAGGER_UI_DIST.is_dir():
        log.warning("Swagger UI is not installed (%s); /docs will not render: run scripts/setup.sh", SWAGGER_UI_DIST)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/docs/static/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        media_type = DOCS_ASSETS.get(name)
        if media_type is None or not (SWAGGER_UI_DIST / name).is_file():
            raise NotFound(f"no docs asset {name!r}")
        return FileResponse(SWAGGER_UI_DIST / name, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with each operation's roles in its description and the
    schemas of bodies that the ledger reads itself (``TallyCreate``)."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in submissions.EXTRA_SCHEMAS:
        generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in generated.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas[model.__name__] = generated
    # Scope ids are this election's: list them, so the document says exactly what is valid.
    election = app.state.tally.ledger_app.election
    scope = schemas.get("ScopeCreate", {}).get("properties", {})
    for name, ids in (("constituencies", list(election.constituencies)), ("provinces", list(election.provinces))):
        for option in scope.get(name, {}).get("anyOf", []):
            if option.get("type") == "array":
                option["items"] = {"type": "string", "enum": ids}
    document["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "An API key (tly_…) or a volunteer session token (tvs2.…)"},
    }
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            roles = operation.get("x-roles") if isinstance(operation, dict) else None
            if roles:
                who = "everyone, including anonymous callers" if "anonymous" in roles else ", ".join(roles)
                operation["description"] = f"**Roles:** {who}.\n\n" + operation.get("description", "")
                operation["security"] = [{}, {"bearer": []}] if "anonymous" in roles else [{"bearer": []}]
    app.openapi_schema = document
    return document


def create_app(settings: Settings | None = None, *, app_state: AppState | None = None, fast_paths: bool = True) -> FastAPI:
    """The FastAPI app over the ledger in ``settings.data_dir`` (or over ``app_state``).

    The ledger is opened (and migrated) now; the background loops of ``ledger.runtime``
    start with the app's lifespan and stop with it. ``fast_paths=False`` leaves out the
    hot routes of ``api.routes.hot`` (tests compare the two).
    """
    state = app_state or AppState.open(settings)
    runtime = Runtime(state.ledger_app, on_counted=state.feed.notify)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        try:
            yield
        finally:
            runtime.stop()
            if app_state is None:
                state.close()

    app = FastAPI(
        title="Tally Ledger",
        dependencies=[Depends(reject_unknown_query)],
        version="1.0.0",
        description=DESCRIPTION,
        docs_url=None,  # served by _install_docs, from this host
        redoc_url=None,  # ReDoc would load from a CDN; Swagger UI at /docs is served locally
        lifespan=lifespan,
        openapi_tags=[
            {"name": "auth", "description": "Volunteer sign-in"},
            {"name": "admin", "description": "API keys and volunteers (admin)"},
            {"name": "submissions", "description": "Photos and signed tallies (volunteers)"},
            {"name": "records and proofs", "description": "Accepted records and their proofs (public)"},
            {"name": "batches", "description": "Merkle batches and their anchors (public)"},
            {"name": "content", "description": "Raw content by CID (public)"},
            {"name": "aggregates", "description": "Results (public; newsroom keys get higher limits)"},
            {"name": "feed", "description": "Every entry in order (newsroom, war room, admin)"},
            {"name": "election", "description": "The election definition (public)"},
            {"name": "service", "description": "Health"},
        ],
    )
    app.state.tally = state
    app.state.runtime = runtime
    install_error_handlers(app)
    for module in (auth, admin, submissions, records, content, election, aggregates, feed, review, custodial, authority):
        app.include_router(module.router)
    _install_docs(app)
    if fast_paths:
        hot.install(app, state)
    if state.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=state.settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match", "Last-Event-ID"],
            expose_headers=["ETag", "Retry-After", "Location", "Tally-View", "Tally-Computed-At", "Tally-Units-Reporting"],
        )
    edge = state.settings
    app.add_middleware(
        BodyLimit,
        photo_limit=edge.max_photo_bytes,
        json_limit=edge.max_json_bytes,
        idle_timeout=edge.body_idle_timeout_seconds,
        read_timeout=edge.body_read_timeout_seconds,
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
