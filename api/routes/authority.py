"""The authority log from outside the server: entries its admins sign elsewhere (a change of
admins takes several admins' entries, under the rule in force). Reading it is the feed's
``?view=authority``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import StateDep, access, read_json
from api.routes.submissions import receipt_response
from api.schemas import TallyReceiptPublic
from ledger.app import ADMIN_ONLY

router = APIRouter(prefix="/v1/authority", tags=["authority"])
ENTRY_BODY = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}


@router.post(
    "/entries",
    status_code=201,
    response_model=TallyReceiptPublic,
    **access(*ADMIN_ONLY, errors=(409, 413, 415), openapi_extra={"requestBody": ENTRY_BODY}),
)
async def submit_entry(request: Request, state: StateDep) -> Response:
    """A ``tally-authority-v1`` entry signed by one of the log's admins
    (``wallets.authority_client.sign_authority_entry``): checked against the log's rules
    (403 naming the rule), stored, sealed and anchored like every entry. A change of admins
    takes effect once as many admins as the rule in force asks have sent theirs."""
    body = await read_json(request)
    accepted = await run_in_threadpool(state.ledger_app.submit_authority_entry, body)
    state.feed.notify()
    return receipt_response(accepted)
