from __future__ import annotations

from pathlib import Path

import pytest

from ledger.election import Election
from ledger.election.validation import validate_tally
from ledger.errors import NotFound
from ledger.settings import Settings
from tests.support.factories import tally_json
from wallets.custodial import CustodialWallets


def test_a_custodial_key_signs_for_its_volunteer_and_stays_encrypted(tmp_path: Path, election: Election) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    settings.ensure_dirs()
    wallets = CustodialWallets(settings)
    address = wallets.create()
    assert wallets.holds(address)
    path = settings.keys_dir / "custodial" / f"{address}.json"
    assert '"crypto"' in path.read_text() and path.stat().st_mode & 0o077 == 0
    assert settings.keys_dir.stat().st_mode & 0o077 == 0
    signed = wallets.sign_tally(address, tally_json(election), election)
    assert signed["submitter"] == address
    assert validate_tally(signed, election=election, photo_exists=lambda _: True)["submitter"] == address
    # a second process opening the same data directory signs identically
    again = CustodialWallets(settings).sign_tally(address, tally_json(election), election)
    assert again["signature"] == signed["signature"]
    with pytest.raises(NotFound, match="no custodial key"):
        wallets.sign_tally("0x" + "12" * 20, tally_json(election), election)
