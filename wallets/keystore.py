"""Encrypted key files for the ledger's chain accounts (the anchorer).

A key file is an Ethereum keystore v3 JSON document (scrypt + AES-128-CTR, as made by
``eth_account.Account.encrypt``), exactly what Ape keeps in ``~/.ape/accounts/<alias>.json``;
the ledger keeps it in ``<data dir>/keys/<alias>.json``, so ``ape accounts`` can use it
too (copy it to Ape's accounts folder).

The password is ``TALLY_KEYSTORE_PASSWORD``. Only when the chain is the embedded anvil (no
``TALLY_RPC_URL``) or another node on a loopback address may it be left unset: then a random
password is made once and kept beside the key file in ``<alias>.password`` (mode 0600),
which protects nothing on a real chain and is refused there.

Nothing here logs, prints or puts a private key or a password in an error message.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.chain.connection import is_local_url
from ledger.core.hashing import checksum_address
from ledger.errors import KeystoreError
from ledger.settings import Settings

__all__ = [
    "DEFAULT_ALIAS",
    "KeystoreError",
    "create_keystore",
    "keystore_address",
    "keystore_path",
    "load_or_create_signer",
    "load_signer",
    "resolve_password",
]

DEFAULT_ALIAS = "anchorer"


def keystore_path(settings: Settings, alias: str = DEFAULT_ALIAS) -> Path:
    if not alias or "/" in alias or alias.startswith("."):
        raise KeystoreError(f"alias {alias!r} is not a plain file name")
    return settings.keys_dir / f"{alias}.json"


def _write_private(path: Path, text: str) -> None:
    """Creates ``path`` with mode 0600; refuses to overwrite an existing file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def create_keystore(path: Path, password: str, *, private_key: bytes | None = None, scrypt_n: int | None = None) -> str:
    """Writes a new key file (a fresh random key unless one is given); returns its address.

    ``scrypt_n`` is the scrypt cost; the default (eth-account's, 2**18, about a second to
    open) is what Ape uses. Tests may pass a small power of two.
    """
    if not password:
        raise KeystoreError("a key file needs a non-empty password")
    if path.exists():
        raise KeystoreError(f"{path} already exists; refusing to overwrite a key file")
    account = Account.from_key(private_key) if private_key is not None else Account.create()
    keystore = Account.encrypt(account.key, password, kdf="scrypt", iterations=scrypt_n)
    _write_private(path, json.dumps(keystore, indent=2, sort_keys=True) + "\n")
    return str(account.address)


def _read_keystore(path: Path) -> dict[str, object]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise KeystoreError(f"no key file at {path}") from error
    except (OSError, ValueError) as error:
        raise KeystoreError(f"{path} is not a readable keystore JSON file ({type(error).__name__})") from error
    if not isinstance(document, dict) or document.get("version") != 3 or "crypto" not in document:
        raise KeystoreError(f"{path} is not an Ethereum keystore v3 file")
    return document


def keystore_address(path: Path) -> str:
    """The checksummed address of a key file, read without the password (keystore v3 keeps
    it as 40 hex digits, without ``0x``)."""
    document = _read_keystore(path)
    try:
        address = str(document["address"])
        return checksum_address("0x" + (address[2:] if address[:2] in ("0x", "0X") else address))
    except (KeyError, ValueError) as error:
        raise KeystoreError(f"{path} has no valid address field") from error


def load_signer(path: Path, password: str) -> LocalAccount:
    """Decrypts the key file into a signer for web3 (``sign_transaction``)."""
    document = _read_keystore(path)
    try:
        private_key = Account.decrypt(document, password)
    except ValueError as error:  # eth-keyfile says "MAC mismatch" for a wrong password
        raise KeystoreError(f"{path} does not open with the given password") from error
    signer: LocalAccount = Account.from_key(private_key)
    return signer


def resolve_password(settings: Settings, alias: str = DEFAULT_ALIAS) -> str:
    """``TALLY_KEYSTORE_PASSWORD``, or for a local chain only, a password kept in the data dir."""
    if settings.keystore_password:
        return settings.keystore_password
    if not is_local_url(settings.rpc_url):
        raise KeystoreError(
            f"TALLY_KEYSTORE_PASSWORD is not set; it is required for the key file of {alias!r} "
            f"when TALLY_RPC_URL points at a non-local chain"
        )
    password_file = settings.keys_dir / f"{alias}.password"
    if not password_file.exists():
        _write_private(password_file, secrets.token_urlsafe(32))
    try:
        return password_file.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise KeystoreError(f"cannot read {password_file} ({type(error).__name__})") from error


def load_or_create_signer(settings: Settings, alias: str = DEFAULT_ALIAS) -> LocalAccount:
    """The signer for ``alias``, making its key file the first time it is asked for."""
    path = keystore_path(settings, alias)
    password = resolve_password(settings, alias)
    if not path.exists():
        create_keystore(path, password)
    return load_signer(path, password)
