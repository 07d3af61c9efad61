"""What ``bench.api`` prepares before it times anything: signed tallies, stand-in photos,
people with sessions and readers' keys in a data directory, and the in-process floor."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["in_process_rates", "photo_bytes", "photo_cid", "prepare", "sign_tallies", "store_photos"]


def sign_tallies(count: int, volunteers: int) -> tuple[list[bytes], list[dict[str, Any]]]:
    """``count`` signed tallies for distinct units, spread over the country, by ``volunteers`` keys.

    Returns the volunteers' keys and the tallies; signing is the client's work, done before timing.
    The counts are the simulated night's (``ledger.cli.simulation``), as in the national bench.
    """
    from ledger.cli.simulation import NightSimulator
    from ledger.core.timefmt import format_time_seconds
    from ledger.election import load_election
    from wallets.tally_client import sign_tally

    election = load_election("th2566")
    simulator = NightSimulator(election)
    keys = [bytes(31) + bytes([1 + i]) for i in range(volunteers)]
    units = list(election.polling_units())
    chosen = units[:: len(units) // count][:count]
    print(f"signing {count} tallies ...", flush=True)
    tallies = []
    for index, unit in enumerate(chosen):
        true = simulator.true_count(unit)
        document = {
            "polling_unit": unit.id,
            "submission_id": f"bench-{index:08d}",
            "submitted_at": format_time_seconds(simulator.report_time(unit, 1)),
            "registered_voters": unit.registered_voters,
            "constituency": true.constituency.as_json(),
            "party_list": true.party_list.as_json(),
            "photos": {"tally_board": str(photo_cid(index, "board")), "form_5_18": str(photo_cid(index, "form"))},
        }
        tallies.append(sign_tally(document, keys[index % volunteers], election))
    return keys, tallies


def photo_bytes(index: int, role: str) -> bytes:
    """Each report has photos of its own, as on the night (a photo shared by many reports
    would be flagged, and would make every screening look at all of them)."""
    return f"{role} photo of report {index}".encode()


def photo_cid(index: int, role: str) -> Any:
    from ledger.core.cid import CID, RAW

    return CID.of(RAW, photo_bytes(index, role))


def store_photos(ledger: Any, count: int) -> None:
    """Stand-in photos: their blocks, and rows in the photo index (a tally's photo links must name photos)."""
    from ledger.intake.photos import PhotoInfo

    infos = []
    for index in range(count):
        for role in ("board", "form"):
            ledger.content.put_block(photo_cid(index, role), photo_bytes(index, role))
            info = PhotoInfo(
                cid=photo_cid(index, role),
                size=len(photo_bytes(index, role)),
                media_type="image/jpeg",
                taken_at=None,
                gps=None,
                exif={},
            )
            infos.append((info, None))
    for start in range(0, len(infos), 500):
        ledger.record_photos(infos[start : start + 500])


def prepare(settings: Any, keys: list[bytes], units: list[str], readers: int, photos: int) -> tuple[dict[str, str], list[str]]:
    """A data directory ready to serve: photo blocks, volunteers (members of one
    organisation, assigned the units they report: ``units[i]`` by ``keys[i % len(keys)]``)
    with sessions, newsroom keys for the readers. Returns (session token by address, reader keys)."""
    from api.state import AppState
    from ledger.core.signing import address_from_private_key

    state = AppState.open(settings)
    try:
        store_photos(state.ledger_app.ledger, photos)
        review = state.ledger_app.review
        review.create_organisation(organisation_id="bench", name="Benchmark volunteers", kind="civil_society")
        sessions = {}
        for index, key in enumerate(keys):
            address = address_from_private_key(key)
            review.register_member(address=address, level=1, name=f"volunteer {index}", organisation_id="bench")
            review.assign(address=address, areas=units[index :: len(keys)])
            sessions[address] = state.access.sessions.issue(address)[0]
        reader_keys = [state.access.create_principal(role="newsroom", name=f"reader {i}")[1] for i in range(readers)]
    finally:
        state.close()
    return sessions, reader_keys


def in_process_rates(settings: Any, tallies: list[dict[str, Any]], photos: int, group: int = 64) -> tuple[float, float]:
    """The floor under the HTTP figure: the ledger called directly. Half the tallies one by one
    (``Ledger.submit_tally``: one transaction each), half in groups (``prepare_tally`` and
    ``commit``: what the API's writer does when reports queue up)."""
    from ledger.app import open_app

    app = open_app(settings)
    half = len(tallies) // 2
    try:
        store_photos(app.ledger, photos)
        started = time.perf_counter()
        for submission in tallies[:half]:
            app.ledger.submit_tally(submission)
        single = half / (time.perf_counter() - started)
        started = time.perf_counter()
        for start in range(half, len(tallies), group):
            app.ledger.commit([app.ledger.prepare_tally(t) for t in tallies[start : start + group]])
        grouped = (len(tallies) - half) / (time.perf_counter() - started)
        return single, grouped
    finally:
        app.close()
