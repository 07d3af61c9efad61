"""API keys: ``tly_`` + 43 characters of URL-safe base64 (256 random bits); and
invitation codes for custodial volunteers: 16 characters of an alphabet without look-alikes
(80 random bits), written in groups of four to be read out over the phone.

Shown once when made; only their SHA-256 is stored, which is enough for secrets of that
strength (no password KDF is needed): an invitation is also single use and expires.
"""

from __future__ import annotations

import hashlib
import re
import secrets

__all__ = [
    "API_KEY_PREFIX",
    "INVITATION_ALPHABET",
    "INVITATION_LENGTH",
    "hash_api_key",
    "new_api_key",
    "new_invitation_code",
    "normalise_invitation_code",
]

API_KEY_PREFIX = "tly_"
INVITATION_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""32 letters and digits, without 0/O and 1/I, which are read and heard alike."""
INVITATION_LENGTH = 16
_INVITATION = re.compile(f"[{INVITATION_ALPHABET}]{{{INVITATION_LENGTH}}}", re.ASCII)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_invitation_code() -> str:
    code = "".join(secrets.choice(INVITATION_ALPHABET) for _ in range(INVITATION_LENGTH))
    return "-".join(code[i : i + 4] for i in range(0, INVITATION_LENGTH, 4))


def normalise_invitation_code(code: object) -> str | None:
    """The code as stored (upper case, without dashes and spaces), or None if it is no code."""
    if not isinstance(code, str) or len(code) > 64:
        return None
    compact = code.replace("-", "").replace(" ", "").upper()
    return compact if _INVITATION.fullmatch(compact) else None
