"""API keys: ``tly_`` + 43 characters of URL-safe base64 (256 random bits).

Shown once when made; only their SHA-256 is stored, which is enough for keys of that
strength (no password KDF is needed).
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["API_KEY_PREFIX", "hash_api_key", "new_api_key"]

API_KEY_PREFIX = "tly_"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
