"""Custodial keys for volunteers who have never used a wallet.

The coordinator asks for one when registering such a volunteer: ``wallets`` makes a fresh
key, keeps it encrypted (keystore v3, the ledger's keystore password) in
``<data dir>/keys/custodial/<address>.json``, and signs the volunteer's tallies with it
when they submit through the app. The ledger can then prove who it signed for, but the
volunteer trusts the coalition with the key: the record says so (``custodial`` on the
member), and a volunteer can move to self-custody by registering an address of their own.

Key files use a lighter scrypt cost (2**14) than the anchorer's, because a night may need
thousands of them; each is still protected by the keystore password.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ledger.core.hashing import checksum_address
from ledger.election import Election
from ledger.errors import KeystoreError, NotFound
from ledger.people.access import Caller, check_relay
from ledger.settings import Settings
from ledger.store import Member
from wallets.keystore import create_keystore, load_signer, resolve_password
from wallets.tally_client import sign_decision, sign_tally

__all__ = ["CustodialWallets"]

CUSTODIAL_SCRYPT_N = 2**14


class CustodialWallets:
    def __init__(self, settings: Settings):
        self.directory = settings.keys_dir / "custodial"
        self._password = resolve_password(settings, "custodial")
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def create(self) -> str:
        """A new custodial key; returns its address (the key never leaves this object)."""
        from eth_account import Account

        account = Account.create()
        address = str(account.address)
        create_keystore(
            self.directory / f"{address}.json", self._password, private_key=bytes(account.key), scrypt_n=CUSTODIAL_SCRYPT_N
        )
        return address

    def holds(self, address: str) -> bool:
        return (self.directory / f"{checksum_address(address)}.json").exists()

    def _key(self, address: str) -> bytes:
        address = checksum_address(address)
        with self._lock:
            key = self._keys.get(address)
            if key is None:
                path = self.directory / f"{address}.json"
                if not path.exists():
                    raise NotFound(f"no custodial key for {address}")
                key = bytes(load_signer(path, self._password).key)
                if key is None:
                    raise KeystoreError(f"{path} holds no key")
                self._keys[address] = key
            return key

    def sign_tally(self, address: str, submission: Mapping[str, Any], election: Election) -> dict[str, Any]:
        """Sign a volunteer's tally with their custodial key."""
        return sign_tally(submission, self._key(address), election)

    def relay_tally(self, caller: Caller, member: Member, submission: Mapping[str, Any], election: Election) -> dict[str, Any]:
        """Sign the count ``caller`` relays for ``member``, once ``ledger.people.access.check_relay``
        let them: a coordinator of the member's organisation, for a custodial level-1 volunteer,
        or that volunteer themselves, signed in with an invitation."""
        check_relay(
            caller,
            volunteer=member.public_id,
            organisation=member.organisation_id,
            level=member.level,
            custodial=member.custodial,
            address=member.address,
        )
        return self.sign_tally(member.address, submission, election)

    def sign_decision(self, address: str, decision: Mapping[str, Any], election: Election) -> dict[str, Any]:
        return sign_decision(decision, self._key(address), election)
