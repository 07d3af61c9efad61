"""The API process's background work: aggregates refresh, sealing and anchoring loops."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.main import create_app
from api.state import AppState
from ledger.core.cid import CID, RAW
from tests.support.api import VOLUNTEER, TestClient, make_settings, sign_in
from tests.support.factories import VOLUNTEER_KEY, signed_tally, stand_in_photos
from tests.support.net import free_port


def wait_for(check: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s")


def open_state(settings: Any) -> AppState:
    state = AppState.open(settings)
    state.ledger_app.content.put_block(CID.of(RAW, b"board"), b"board")
    state.ledger_app.content.put_block(CID.of(RAW, b"form"), b"form")
    stand_in_photos(state.ledger_app.ledger)
    state.access.register_volunteer(address=VOLUNTEER)
    return state


def test_reports_reach_the_aggregates_and_the_feed_and_get_sealed_in_the_background(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(
        tmp_path / "data",
        database_url,
        api_refresh_aggregates=True,
        aggregates_refresh_seconds=0.05,
        api_seal_batches=True,
        seal_interval_seconds=0.05,
        batch_max_age_seconds=0.2,
    )
    state = open_state(settings)
    _, newsroom = state.access.create_principal(role="newsroom", name="newsroom")
    try:
        with TestClient(create_app(app_state=state)) as client:
            volunteer = {"Authorization": f"Bearer {sign_in(client, VOLUNTEER_KEY)}"}
            receipt = client.post("/v1/tallies", json=signed_tally(state.ledger_app.election), headers=volunteer).json()
            accepted = time.monotonic()
            wait_for(lambda: client.get("/v1/aggregates/unofficial/national").json()["units_reporting"] == 1, timeout=2.0)
            assert time.monotonic() - accepted < 2.0
            feed = client.get("/v1/feed/stream?max_events=1&timeout=2", headers={"Authorization": f"Bearer {newsroom}"})
            assert receipt["record_cid"] in feed.text
            proof = wait_for(
                lambda: (p := client.get(f"/v1/proofs/{receipt['record_cid']}").json())["status"] == "sealed" and p, timeout=5.0
            )
            assert proof["batch"]["id"] == 1
    finally:
        state.close()


@pytest.mark.slow
def test_the_anchoring_loop_anchors_sealed_batches_on_the_embedded_chain(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", f"sqlite:///{tmp_path / 'tally.db'}", anvil_port=free_port(), api_anchor_batches=True
    )
    state = open_state(settings)
    try:
        with TestClient(create_app(app_state=state)) as client:
            cid = state.ledger.submit_tally(signed_tally(state.ledger_app.election)).receipt["record_cid"]
            state.ledger_app.batcher.seal_due(force=True)
            proof = wait_for(
                lambda: (p := client.get(f"/v1/proofs/{cid}").json())["status"] == "anchored" and p, timeout=60.0, interval=0.2
            )
            assert proof["anchor"]["chain_id"] == 31337 and proof["anchor"]["tx_hash"].startswith("0x")
            assert client.get("/v1/batches/1").json()["anchor"]["tx_hash"] == proof["anchor"]["tx_hash"]
        assert not (settings.chain_dir / "anvil.pid").exists()  # the app started the chain, so it stopped it
    finally:
        state.close()


def test_a_stream_ends_when_its_client_goes_away(tmp_path: Path) -> None:
    """Over a real socket (uvicorn), not the test client: the server notices the disconnect."""
    import threading

    import httpx
    import uvicorn

    settings = make_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'tally.db'}", feed_poll_seconds=0.1)
    state = open_state(settings)
    _, newsroom = state.access.create_principal(role="newsroom", name="newsroom")
    state.ledger.submit_tally(signed_tally(state.ledger_app.election))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(app_state=state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=10.0)
        with httpx.stream(
            "GET", f"http://127.0.0.1:{port}/v1/feed/stream", headers={"Authorization": f"Bearer {newsroom}"}, timeout=10.0
        ) as stream:
            lines = stream.iter_lines()
            assert any(line.startswith("data: ") for line in lines)  # the entry already there
            assert state.feed.streams == 1
            time.sleep(0.3)
            assert state.feed.streams == 1  # still open, waiting for news
        wait_for(lambda: state.feed.streams == 0, timeout=5.0)  # the client left: the stream ended
    finally:
        server.should_exit = True
        thread.join(10.0)
        state.close()


def test_tally_serve_makes_the_first_admin_key_and_tally_seats_allocates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from ledger.cli.main import app as cli

    settings = make_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'tally.db'}")
    monkeypatch.setenv("TALLY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TALLY_DATABASE_URL", settings.resolved_database_url)
    made = CliRunner().invoke(cli, ["serve", "--create-admin-key", "operations"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    state = AppState.open(settings)
    try:
        caller = state.access.authenticate(token, client_ip=None)
        assert (caller.role, caller.name) == ("admin", "operations")
    finally:
        state.close()
    votes = tmp_path / "votes.json"
    votes.write_text('{"1": 400, "2": 300, "3": 300}')
    allocation = CliRunner().invoke(cli, ["seats", str(votes), "--seats", "5"])
    assert allocation.exit_code == 0, allocation.output
    document = json.loads(allocation.stdout)
    assert document["seats_allocated"] == 4 and document["ties"][0]["parties"] == [2, 3]
    from_ledger = CliRunner().invoke(cli, ["seats", "--house"])
    assert from_ledger.exit_code == 0 and json.loads(from_ledger.stdout)["seats"] == 500


@pytest.mark.slow
def test_the_anchoring_loop_restarts_an_embedded_chain_that_was_killed(tmp_path: Path) -> None:
    """anvil killed with -9 under a running server: the loop starts it again from its state on
    disk and anchors what was sealed since (before, it backed off until the server restarted)."""
    import os
    import signal

    settings = make_settings(
        tmp_path / "data", f"sqlite:///{tmp_path / 'tally.db'}", anvil_port=free_port(), api_anchor_batches=True
    )
    state = open_state(settings)
    election = state.ledger_app.election
    try:
        with TestClient(create_app(app_state=state)) as client:

            def anchored(cid: str) -> bool:
                return bool(client.get(f"/v1/proofs/{cid}").json()["status"] == "anchored")

            first = state.ledger.submit_tally(signed_tally(election)).receipt["record_cid"]
            state.ledger_app.batcher.seal_due(force=True)
            wait_for(lambda: anchored(first), timeout=60.0, interval=0.2)
            pid = int((settings.chain_dir / "anvil.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            second = state.ledger.submit_tally(signed_tally(election, "BKK_1-0002", submission_id="after-the-kill")).receipt[
                "record_cid"
            ]
            state.ledger_app.batcher.seal_due(force=True)
            wait_for(lambda: anchored(second), timeout=90.0, interval=0.5)
            new_pid = int((settings.chain_dir / "anvil.pid").read_text().split()[0])
            assert new_pid != pid
    finally:
        state.close()
