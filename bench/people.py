"""The national night's people: their keys (derived from the seed) and their registration,
directly in the database, before the server starts (untimed)."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["ORGANISATIONS", "setup_people", "volunteer_key", "war_room_key"]

ORGANISATIONS = ("civic-watch", "uni-consortium", "local-assoc")  # as ledger.cli.demo.ORGANISATIONS


def _key(seed: int, *parts: object) -> bytes:
    return hashlib.sha256(":".join(map(str, ("tally-bench-national", seed, *parts))).encode()).digest()


def volunteer_key(seed: int, organisation: str, constituency_id: str) -> bytes:
    """The key of ``organisation``'s one volunteer in ``constituency_id``."""
    return _key(seed, "volunteer", organisation, constituency_id)


def war_room_key(seed: int) -> bytes:
    """The key of the war-room member (level 3)."""
    return _key(seed, "war-room")


def setup_people(
    *, data_dir: Path, database_url: str | None, batch_max_records: int, seed: int, election: Any, constituencies: list[Any]
) -> tuple[int, int, float]:
    """3 organisations, one level-1 volunteer per organisation per constituency assigned every
    unit of it (assignments bulk-inserted, and each volunteer's units stated in the authority
    log as one entry, as ``Assignments.assign`` would), and a war-room member (level 3), in a database
    that must hold no entries yet. Returns (volunteers, assignments, seconds)."""
    from sqlalchemy import insert, select

    from ledger.app import open_app
    from ledger.cli.demo import ORGANISATIONS as DEMO_ORGANISATIONS
    from ledger.core.signing import address_from_private_key
    from ledger.settings import Settings
    from ledger.store import Entry
    from ledger.store.review_models import Assignment

    started = time.perf_counter()
    app = open_app(Settings(data_dir=data_dir, database_url=database_url, batch_max_records=batch_max_records))
    try:
        with app.database.session() as session:
            if session.scalar(select(Entry.id).limit(1)) is not None:
                raise SystemExit(f"the database {app.database.url} already holds entries; the benchmark needs a fresh one")
        review = app.review
        for organisation_id, name, kind in DEMO_ORGANISATIONS:
            review.create_organisation(organisation_id=organisation_id, name=name, kind=kind)
        assert tuple(o for o, _, _ in DEMO_ORGANISATIONS) == ORGANISATIONS
        war_room = address_from_private_key(war_room_key(seed))
        review.register_member(
            address=war_room, level=3, name="War room duty officer", organisation_id=None, registered_by="admin"
        )
        now = datetime.now(UTC)
        assignments: list[dict[str, Any]] = []
        addresses = []
        for constituency in constituencies:
            units = [u.id for u in election.polling_units(constituency.id)]
            for organisation in ORGANISATIONS:
                address = address_from_private_key(volunteer_key(seed, organisation, constituency.id))
                review.register_member(
                    address=address,
                    level=1,
                    name=f"{organisation} volunteer, {constituency.id}",
                    organisation_id=organisation,
                    contact="(private)",
                    registered_by=f"coordinator of {organisation}",
                )
                addresses.append(address)
                with app.authority.grant_areas(address, units, level=1):
                    pass  # stated in the authority log; the rows are bulk-inserted below
                assignments += [
                    {
                        "address": address,
                        "area": unit,
                        "constituency_id": constituency.id,
                        "assigned_at": now,
                        "assigned_by": f"coordinator of {organisation}",
                    }
                    for unit in units
                ]
        with app.database.session() as session:
            for start in range(0, len(assignments), 20_000):
                session.execute(insert(Assignment), assignments[start : start + 20_000])
        _register_api_volunteers(app, [*addresses, war_room], now)
    finally:
        app.close()
    return len(addresses), len(assignments), time.perf_counter() - started


def _register_api_volunteers(app: Any, addresses: list[str], now: datetime) -> None:
    """Where the API signs people in from its ``volunteers`` table, list them there too (unless
    registering them as members already did)."""
    try:
        from ledger.store import Volunteer
    except ImportError:
        return
    from sqlalchemy import insert, select

    with app.database.session() as session:
        listed = set(session.scalars(select(Volunteer.address)))
        missing = [{"address": a, "name": None, "registered_at": now} for a in addresses if a not in listed]
        if missing:
            session.execute(insert(Volunteer), missing)
