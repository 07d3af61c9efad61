"""``tally demo``: a simulated election night on the real 2023 structure, end to end.

It starts the local chain and deploys the contract, registers organisations and people
at all three levels, and then, constituency by constituency (spread across the country):
several organisations report every unit (with photos carrying EXIF time and GPS, and a
realistic share of disagreements and mistakes), heads resolve what the screening flags,
the war room certifies units and constituencies, and batches are sealed and anchored as
it goes. It ends with the national party-list totals, the seat projection and the
projected House, and keeps serving the API.

Everything is seeded: the same ``--seed`` gives the same night, and running it again on
the same data directory resumes (submissions and decisions are idempotent).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.app import LedgerApp, open_app
from ledger.chain.anvil import AnvilNode
from ledger.chain.deploy import open_evidence_client
from ledger.cli.simulation import NightSimulator, TrueCount, make_photo
from ledger.core.signing import address_from_private_key
from ledger.core.timefmt import format_time_micro, format_time_seconds
from ledger.election import Constituency, Election, PollingUnit
from ledger.errors import AlreadyExists
from ledger.review.screening import numbers_of
from ledger.sealing.anchoring import AnchorWorker
from wallets.tally_client import sign_decision, sign_tally

__all__ = ["ORGANISATIONS", "DemoReport", "choose_constituencies", "run_demo"]

ORGANISATIONS = (
    ("civic-watch", "Civic Watch Network", "civil_society"),
    ("uni-consortium", "University Election Consortium", "university"),
    ("local-assoc", "Local Government Observers", "local_government"),
)
UNITS_PER_VOLUNTEER = 4
# Shares of units with each kind of trouble in the simulated night.
P_MISREAD = 0.04  # one organisation misreads: votes moved between two candidates
P_FORM_INCONSISTENT = 0.01  # the signed form itself does not add up
P_REUSED_PHOTO = 0.005  # a volunteer sends a photo of another unit
P_SINGLE_REPORT = 0.02  # only one organisation reaches the unit


def _key(seed: int, *parts: object) -> bytes:
    return hashlib.sha256(":".join(map(str, ("tally-demo", seed, *parts))).encode()).digest()


def choose_constituencies(election: Election, units: int) -> list[Constituency]:
    """Whole constituencies spread over the country until about ``units`` polling units."""
    everything = list(election.constituencies.values())
    if units >= election.unit_count:
        return everything
    average = election.unit_count / len(everything)
    wanted = max(1, round(units / average))
    step = len(everything) / wanted
    return [everything[int(i * step)] for i in range(wanted)]


@dataclass
class DemoReport:
    units: int = 0
    reports: int = 0
    replayed: int = 0
    decisions: int = 0
    batches_anchored: int = 0
    units_certified: int = 0
    constituencies_certified: int = 0
    flags: dict[str, int] = field(default_factory=dict)


class Night:
    def __init__(self, app: LedgerApp, seed: int, console: Console):
        self.app = app
        self.seed = seed
        self.console = console
        self.election = app.election
        self.review = app.review
        self.sim = NightSimulator(self.election, seed)
        self.report = DemoReport()
        self.war_room = _key(seed, "war-room")

    # -- people -------------------------------------------------------------------

    def volunteer_key(self, organisation: str, unit: PollingUnit) -> bytes:
        return _key(self.seed, "volunteer", organisation, unit.constituency_id, (unit.number - 1) // UNITS_PER_VOLUNTEER)

    def head_key(self, constituency_id: str) -> bytes:
        return _key(self.seed, "head", constituency_id)

    def _register(self, key: bytes, **kwargs: Any) -> None:
        try:
            self.review.register_member(address=address_from_private_key(key), **kwargs)
        except AlreadyExists:
            pass  # registered on an earlier run

    def setup_people(self, constituencies: list[Constituency]) -> None:
        existing = {o.id for o in self.review.organisations()}
        for organisation_id, name, kind in ORGANISATIONS:
            if organisation_id not in existing:
                self.review.create_organisation(organisation_id=organisation_id, name=name, kind=kind)
        self._register(self.war_room, level=3, name="War room duty officer", organisation_id=None, registered_by="admin")
        for constituency in constituencies:
            head = self.head_key(constituency.id)
            self._register(
                head, level=2, name=f"Head of {constituency.id}", organisation_id=ORGANISATIONS[0][0], registered_by="admin"
            )
            self.review.assign(address=address_from_private_key(head), areas=[constituency.id], assigned_by="admin")
            units = list(self.election.polling_units(constituency.id))
            for organisation_id, _, _ in ORGANISATIONS:
                for start in range(0, len(units), UNITS_PER_VOLUNTEER):
                    group = units[start : start + UNITS_PER_VOLUNTEER]
                    key = self.volunteer_key(organisation_id, group[0])
                    self._register(
                        key,
                        level=1,
                        name=f"{organisation_id} volunteer",
                        organisation_id=organisation_id,
                        contact="(private)",
                        registered_by=f"coordinator of {organisation_id}",
                    )
                    self.review.assign(
                        address=address_from_private_key(key),
                        areas=[u.id for u in group],
                        organisation_id=organisation_id,
                        assigned_by=f"coordinator of {organisation_id}",
                    )
            for unit in units:
                self.review.set_unit_location(unit.id, *self.sim.unit_location(unit))

    # -- reports ------------------------------------------------------------------

    def _photo(self, unit: PollingUnit, organisation: str, role: str, location: tuple[float, float], report: int) -> str:
        taken_at = self.sim.report_time(unit, report) - timedelta(minutes=5)
        image = make_photo(
            label=f"{unit.id} {role}", taken_at=taken_at, location=location, seed=f"{self.seed}:{unit.id}:{organisation}:{role}"
        )
        row, _ = self.app.ledger.store_photo(image, uploader=None, max_bytes=self.app.settings.max_photo_bytes)
        return row.cid

    def submissions(self, count: TrueCount, previous_board: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
        unit = count.unit
        rng = random.Random(_key(self.seed, "trouble", unit.id))
        organisations = [o for o, _, _ in ORGANISATIONS]
        if rng.random() < P_SINGLE_REPORT:
            organisations = organisations[:1]
        misreader = rng.choice(organisations) if rng.random() < P_MISREAD and len(organisations) > 1 else None
        reuser = rng.choice(organisations) if rng.random() < P_REUSED_PHOTO and previous_board else None
        inconsistent = rng.random() < P_FORM_INCONSISTENT
        location = self.sim.unit_location(unit)
        for report, organisation in enumerate(organisations, start=1):
            constituency = count.constituency.as_json()
            party_list = count.party_list.as_json()
            if organisation == misreader and len(constituency["votes"]) >= 2:
                first, second = sorted(constituency["votes"], key=lambda k: -constituency["votes"][k])[:2]
                moved = min(constituency["votes"][second], 10)
                constituency["votes"] = {
                    **constituency["votes"],
                    first: constituency["votes"][first] - moved,
                    second: constituency["votes"][second] + moved,
                }
            if inconsistent:
                party_list = {**party_list, "invalid": party_list["invalid"] + 2}
            board = previous_board if organisation == reuser else self._photo(unit, organisation, "board", location, report)
            submission = {
                "polling_unit": unit.id,
                "submission_id": f"demo{self.seed}-{organisation}-{unit.id}",
                "submitted_at": format_time_seconds(self.sim.report_time(unit, report)),
                "registered_voters": unit.registered_voters,
                "constituency": constituency,
                "party_list": party_list,
                "photos": {"tally_board": board, "form_5_18": self._photo(unit, organisation, "form", location, report)},
            }
            if inconsistent:
                submission["form_inconsistent"] = True
            yield organisation, sign_tally(submission, self.volunteer_key(organisation, unit), self.election)

    def report_unit(self, unit: PollingUnit, previous_board: str | None) -> tuple[TrueCount, str | None]:
        count = self.sim.true_count(unit)
        board = None
        for _, submission in self.submissions(count, previous_board):
            accepted = self.review.submit_report(submission)
            self.report.reports += accepted.created
            self.report.replayed += not accepted.created
            board = board or submission["photos"]["tally_board"]
        return count, board

    # -- decisions ----------------------------------------------------------------

    def _decide(self, key: bytes, role: str, action: str, subject: str, **fields: Any) -> None:
        decision = {
            "decision_id": hashlib.sha256(f"{action}:{subject}:{fields.get('record', '')}".encode()).hexdigest()[:32],
            "decided_at": format_time_micro(self.app.ledger.clock()),
            "role": role,
            "action": action,
            "subject": subject,
            **fields,
        }
        accepted = self.review.decide(sign_decision(decision, key, self.election))
        self.report.decisions += accepted.created

    def resolve(self, constituency: Constituency, truth: dict[str, TrueCount]) -> None:
        """The head works through the queue, reading each unit's form photo (the simulator's
        true count stands in for reading it)."""
        head = self.head_key(constituency.id)
        address = address_from_private_key(head)
        while queue := self.review.head_queue(address, limit=500):
            for item in queue:
                for flag in item["flags"]:
                    self.report.flags[flag["code"]] = self.report.flags.get(flag["code"], 0) + 1
                self._resolve_unit(head, item["unit"], {f["code"]: f for f in item["flags"]}, truth[item["unit"]])

    def _resolve_unit(self, head: bytes, unit_id: str, flags: dict[str, Any], count: TrueCount) -> None:
        review = self.review.unit_review(unit_id)
        true_numbers = numbers_of(
            {
                "registered_voters": count.unit.registered_voters,
                "constituency": count.constituency.as_json(),
                "party_list": count.party_list.as_json(),
            }
        )
        reused = {f["record_cid"] for f in review["flags"] if f["code"] == "photo_reused"}
        for report in review["reports"]:
            if report["record_cid"] in reused and report["record_cid"] not in review["rejected"]:
                self._decide(
                    head,
                    "constituency_head",
                    "reject",
                    unit_id,
                    record=report["record_cid"],
                    reason="the tally-board photo belongs to another polling unit",
                )
        candidates = [r for r in review["reports"] if r["record_cid"] not in reused]
        matching = [
            r for r in candidates if not r["document"].get("form_inconsistent") and numbers_of(r["document"]) == true_numbers
        ]
        if matching:
            self._decide(head, "constituency_head", "accept", unit_id, record=matching[0]["record_cid"])
            return
        # No report matches the form: the head enters the count read from the photo.
        corrected = {
            "polling_unit": unit_id,
            "submission_id": f"fix{self.seed}-{unit_id}",
            # The head corrects on the night, after the reports came in: the simulated time
            # (a record's time must fall in the election's reporting window, and the demo
            # may run years later).
            "submitted_at": format_time_seconds(self.sim.report_time(count.unit, 9) + timedelta(minutes=40)),
            "registered_voters": count.unit.registered_voters,
            "constituency": count.constituency.as_json(),
            "party_list": count.party_list.as_json(),
            "photos": dict((k, v["/"]) for k, v in candidates[0]["document"]["photos"].items()),
            "corrects": [r["record_cid"] for r in candidates],
        }
        accepted = self.review.submit_report(sign_tally(corrected, head, self.election))
        self._decide(
            head,
            "constituency_head",
            "correct",
            unit_id,
            record=accepted.receipt["record_cid"],
            reason="numbers read from the signed form photo",
        )

    def certify(self, constituency: Constituency) -> None:
        for unit in self.election.polling_units(constituency.id):
            state = self.review.replay.unit(unit.id)
            if state.status == "accepted" and state.accepted:
                self._decide(self.war_room, "war_room", "certify", unit.id, record=state.accepted)
            elif state.status == "open" and not self.review.unit_review(unit.id)["reports"]:
                self._decide(self.war_room, "war_room", "exclude", unit.id, reason="no report reached the war room")
            if self.review.replay.unit(unit.id).status == "certified":
                self.report.units_certified += 1
        if not self.review.replay.constituency(constituency.id).certified:
            basis = self.review.replay.basis(constituency.id)
            reason = f"{basis.units_excluded} of {basis.units_total} units excluded: no report reached the war room"
            self._decide(
                self.war_room,
                "war_room",
                "certify_constituency",
                constituency.id,
                **({"reason": reason} if basis.units_excluded else {}),
            )
        self.report.constituencies_certified += 1


def run_demo(*, units: int = 2000, seed: int = 2566, serve: bool = True, console: Console | None = None) -> DemoReport:
    console = console or Console()
    app = open_app()
    election = app.election
    console.print(f"[bold]Tally Ledger demo[/bold]: {election.name}")
    console.print(
        f"  {len(election.provinces)} provinces, {len(election.constituencies)} constituencies, "
        f"{len(election.parties_by_number)} party-list parties, {election.unit_count:,} polling units"
    )
    console.print(f"  data directory: {app.settings.data_dir}")
    node = None if app.settings.rpc_url else AnvilNode.from_settings(app.settings)
    started_here = node.start() if node is not None else False
    try:
        report = _run_night(app, console, units=units, seed=seed)
    except BaseException:
        app.close()
        if node is not None and started_here:
            node.stop()  # a failed run leaves no anvil behind (one it adopted belongs to another process)
        raise
    app.close()
    if serve:
        from ledger.cli.serve import serve_app

        console.print(f"\nServing the API on http://{app.settings.host}:{app.settings.port} (OpenAPI at /docs); Ctrl-C to stop.")
        serve_app(app.settings)
    elif node is not None and started_here:
        node.stop()  # writes the chain state into the data directory
    return report


def _run_night(app: LedgerApp, console: Console, *, units: int, seed: int) -> DemoReport:
    election = app.election
    client = open_evidence_client(app.settings)
    console.print(f"  chain {client.chain_id}: EvidenceAnchor at {client.address}")
    anchorer = AnchorWorker(database=app.database, content=app.content, client=client)
    constituencies = choose_constituencies(election, units)
    night = Night(app, seed, console)
    console.print(
        f"  {len(constituencies)} constituencies ({sum(c.unit_count for c in constituencies):,} units) across "
        f"{len({c.province_id for c in constituencies})} provinces; {len(ORGANISATIONS)} organisations"
    )
    night.setup_people(constituencies)
    total_units = sum(c.unit_count for c in constituencies)
    with Progress(
        TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        reported = progress.add_task("units reported", total=total_units)
        certified = progress.add_task("units certified", total=total_units)
        anchored = progress.add_task("batches anchored", total=None)
        for constituency in constituencies:
            truth: dict[str, TrueCount] = {}
            board = None
            for unit in election.polling_units(constituency.id):
                truth[unit.id], board = night.report_unit(unit, board)
                night.report.units += 1
                progress.advance(reported)
                if app.batcher.seal_due():
                    night.report.batches_anchored += anchorer.drain()
                    progress.update(anchored, completed=night.report.batches_anchored)
            night.resolve(constituency, truth)
            night.certify(constituency)
            progress.update(certified, completed=night.report.units_certified)
        app.batcher.seal_due(force=True)
        night.report.batches_anchored += anchorer.drain()
        progress.update(anchored, completed=night.report.batches_anchored, total=night.report.batches_anchored)
    app.aggregates.refresh()
    report = night.report
    console.print(
        f"reports accepted: {report.reports:,} new ({report.replayed:,} already there); decisions: "
        f"{report.decisions:,}; units certified: {report.units_certified:,}; constituencies certified: "
        f"{report.constituencies_certified}; batches anchored: {report.batches_anchored}"
    )
    if report.flags:
        console.print("screening flags sent to the heads: " + ", ".join(f"{k} {v}" for k, v in sorted(report.flags.items())))
    _print_results(console, app)
    console.print("\nVerify any number without trusting this server:")
    console.print("  [bold].venv/bin/tally verify all[/bold]            every batch against the chain, and the certified replay")
    console.print("  [bold].venv/bin/tally verify unit BKK_1-0001[/bold]  one unit's records")
    console.print("  [bold].venv/bin/tally proof <record CID>[/bold]     a self-sufficient proof document")
    return report


def _print_results(console: Console, app: LedgerApp) -> None:
    election = app.election
    for view_name in ("certified",):
        view = app.aggregates.view(view_name)
        party_list = view.party_list()
        table = Table(
            title=f"Party-list votes, {view_name} ({party_list['units_reporting']:,} of {party_list['units_total']:,} units)"
        )
        for column in ("No.", "Party", "Votes", "Share", "Seats"):
            table.add_column(column, justify="left" if column == "Party" else "right")
        seats = {p["number"]: p["seats"] for p in (party_list["seats"] or {}).get("parties", [])}
        for party in party_list["parties"][:10]:
            table.add_row(
                str(party["number"]),
                party["name"],
                f"{party['votes']:,}",
                f"{100 * party['share']:.1f}%",
                str(seats.get(party["number"], 0)),
            )
        console.print(table)
        allocation = party_list["seats"]
        if allocation:
            console.print(
                f"quota {allocation['quota']['decimal']} votes a seat; {allocation['seats_allocated']} seats "
                f"allocated, {allocation['seats_undecided']} to be drawn by lot"
                + (f" among parties {allocation['ties']}" if allocation["ties"] else "")
            )
        house = view.house()
        table = Table(title="Projected House of 500 (constituencies certified so far + party list)")
        for column in ("Party", "Constituency", "Party list", "Total"):
            table.add_column(column, justify="left" if column == "Party" else "right")
        for party in [p for p in house["parties"] if p["seats"]][:10]:
            table.add_row(party["name"], str(party["constituency_seats"]), str(party["party_list_seats"]), str(party["seats"]))
        console.print(table)
        undecided = house["undecided"]
        console.print(
            f"undecided: {undecided['seats']} seats ({undecided['constituency_seats']} constituencies not yet "
            f"certified, {undecided['party_list_seats']} party-list seats to be drawn)"
        )
    del election
