"""Volunteer sessions: the sign-in challenge, its ``personal_sign`` recovery, and session tokens.

A volunteer signs the challenge message with ``personal_sign`` (EIP-191) and trades the
signature for a stateless token::

    tvs2.<checksummed address>.<session generation>.<expiry, unix seconds>.<base64url HMAC-SHA256>

Tokens of the first format, ``tvs1.<address>.<expiry>.<mac>``, are still accepted until
they expire, as generation 0. The token format is a wire format: it does not change.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ledger.core.signing import to_checksum_address
from ledger.core.strict import InvalidNumber, parse_decimal
from ledger.core.timefmt import format_time_seconds
from ledger.errors import LedgerError
from ledger.people.errors import Unauthenticated

__all__ = [
    "LEGACY_SESSION_PREFIX",
    "SESSION_PREFIX",
    "SessionSigner",
    "challenge_message",
    "is_session_token",
    "load_or_create_session_secret",
    "recover_personal_sign",
]

SESSION_PREFIX = "tvs2."
LEGACY_SESSION_PREFIX = "tvs1."
"""Tokens issued before session generations: generation 0, accepted until they expire."""


def load_or_create_session_secret(path: Path) -> bytes:
    """The HMAC key of session tokens, made (32 random bytes, mode 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32))
    secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
    if len(secret) < 32:
        raise LedgerError(f"{path} must hold at least 32 bytes of hex")
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SessionSigner:
    """Issues and checks volunteer session tokens (stateless, HMAC-SHA256)."""

    def __init__(self, secret: bytes, *, lifetime_seconds: float, clock: Callable[[], float] = time.time):
        self._secret = secret
        self.lifetime_seconds = lifetime_seconds
        self._clock = clock

    def _mac(self, address: str, expires: int, generation: int | None = None) -> str:
        """The MAC of a token; ``generation=None`` for a legacy ``tvs1.`` token."""
        if generation is None:
            message = f"{LEGACY_SESSION_PREFIX}{address}.{expires}".encode("ascii")
        else:
            message = f"{SESSION_PREFIX}{address}.{generation}.{expires}".encode("ascii")
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def issue(self, address: str, *, generation: int = 0) -> tuple[str, datetime]:
        """A token for ``address`` at its current session ``generation``, and its expiry."""
        expires = int(self._clock() + self.lifetime_seconds)
        token = f"{SESSION_PREFIX}{address}.{generation}.{expires}.{self._mac(address, expires, generation)}"
        return token, datetime.fromtimestamp(expires, UTC)

    def verify(self, token: str) -> str:
        """The volunteer address of a good, unexpired token; raises ``Unauthenticated``."""
        return self.verify_session(token)[0]

    def verify_session(self, token: str) -> tuple[str, int]:
        """``(address, session generation)`` of a good, unexpired token; raises ``Unauthenticated``.

        The token is parsed strictly before anything else reads it: ASCII only, an address
        of 40 hex digits, an expiry of canonical ASCII digits (``ledger.core.strict``), and a MAC
        of 43 base64url characters. Anything else (a Thai or superscript digit, a sign, a
        leading zero) is a malformed token, never an exception of another kind."""
        address, generation, expires, mac = _parse_session_token(token)
        expected = self._mac(address, expires, None if token.startswith(LEGACY_SESSION_PREFIX) else generation)
        if not hmac.compare_digest(mac.encode("ascii"), expected.encode("ascii")):
            raise Unauthenticated("session token is not valid here (wrong signature); sign in again")
        if expires <= self._clock():
            raise Unauthenticated("session expired; sign in again at POST /v1/auth/challenge")
        return address, generation


_SESSION_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)
_SESSION_MAC = re.compile(r"[A-Za-z0-9_-]{43}", re.ASCII)


def is_session_token(token: str) -> bool:
    return token.startswith((SESSION_PREFIX, LEGACY_SESSION_PREFIX))


def _token_number(text: str, max_digits: int, refusal: Unauthenticated) -> int:
    """A number field of a session token, by the strict rule; ``refusal`` otherwise."""
    try:
        return parse_decimal(text, max_digits=max_digits)
    except InvalidNumber:
        raise refusal from None


def _parse_session_token(token: object) -> tuple[str, int, int, str]:
    """``(address, generation, expiry, mac)`` of a ``tvs2.`` token (or of a legacy ``tvs1.``
    one, generation 0), or ``Unauthenticated`` saying what is wrong."""

    def malformed(what: str) -> Unauthenticated:
        return Unauthenticated(f"malformed session token ({what}); sign in again at POST /v1/auth/challenge")

    if not isinstance(token, str) or not is_session_token(token):
        raise malformed(f"it does not start with {SESSION_PREFIX!r}")
    if not token.isascii():
        raise malformed("it holds characters that are not ASCII")
    parts = token[len(SESSION_PREFIX) :].split(".")
    generation = 0
    if token.startswith(LEGACY_SESSION_PREFIX):
        if len(parts) != 3:
            raise malformed("expected tvs1.<address>.<expiry>.<signature>")
        address, expires_text, mac = parts
    else:
        if len(parts) != 4:
            raise malformed("expected tvs2.<address>.<generation>.<expiry>.<signature>")
        address, generation_text, expires_text, mac = parts
        generation = _token_number(generation_text, 9, malformed("the session generation is not a whole number in ASCII digits"))
    if _SESSION_ADDRESS.fullmatch(address) is None:
        raise malformed("the address is not 0x and 40 hex digits")
    expires = _token_number(expires_text, 12, malformed("the expiry is not a time in whole seconds, in ASCII digits"))
    if _SESSION_MAC.fullmatch(mac) is None:
        raise malformed("the signature is not 43 base64url characters")
    return address, generation, expires, mac


def challenge_message(*, election_id: str, address: str, nonce: str, issued_at: datetime, expires_at: datetime) -> str:
    """The text a volunteer signs with ``personal_sign`` to sign in."""
    return (
        "Tally Ledger volunteer sign-in\n"
        "\n"
        "Sign this message to report tallies with this address. It costs nothing and sends no transaction.\n"
        "\n"
        f"Election: {election_id}\n"
        f"Address: {address}\n"
        f"Nonce: {nonce}\n"
        f"Issued At: {format_time_seconds(issued_at)}\n"
        f"Expiration Time: {format_time_seconds(expires_at)}"
    )


def recover_personal_sign(message: str, signature: str) -> str:
    """The checksummed address that signed ``message`` with EIP-191 ``personal_sign``.

    Raises ``Unauthenticated`` when the signature is malformed or recovers to no key.
    """
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        if not isinstance(signature, str) or not signature.startswith("0x"):
            raise ValueError("not 0x-prefixed hex")
        raw = bytes.fromhex(signature[2:])
        if len(raw) != 65:
            raise ValueError(f"{len(raw)} bytes, not 65")
        recovered = Account.recover_message(encode_defunct(text=message), signature=raw)
    except Exception as exc:  # eth-account raises several types for bad signatures
        raise Unauthenticated(f"the signature is not a 65-byte personal_sign signature of the challenge ({exc})") from None
    return to_checksum_address(str(recovered))
