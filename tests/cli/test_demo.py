"""The demo's people: a second run of ``tally demo`` finds them registered and goes on."""

from __future__ import annotations

import io

from rich.console import Console

from api.state import AppState
from ledger.cli.demo import Night
from ledger.store import Member


def test_setting_up_the_people_twice_resumes_without_an_error(api_state: AppState) -> None:
    app = api_state.ledger_app
    constituency = app.election.constituency("BKK_1")
    night = Night(app, 2566, Console(file=io.StringIO()))
    night.setup_people([constituency])
    members = _count_members(app)
    night.setup_people([constituency])  # what the demo's second run does: everyone is there already
    assert _count_members(app) == members > 0


def _count_members(app) -> int:  # type: ignore[no-untyped-def]
    with app.database.session() as session:
        return session.query(Member).count()
