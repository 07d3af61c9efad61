"""Who may call the API: roles, principals with API keys, volunteer sign-in, rate limits.

Pure rules and data access; the HTTP layer (``api/deps.py``) only reads the
``Authorization`` header and hands the token here.

Each job has its module: ``roles`` (the role words), ``keys`` (API keys), ``sessions``
(challenges, ``personal_sign``, session tokens), ``callers`` (who is calling, and the role,
submitter and relay checks), ``limits`` (rate limits), ``registry`` (organisations, volunteers,
members) and ``service`` (``AccessService``). This module gathers what their callers use.

Roles (``ledger.people.roles``)
===============================
``volunteer``          reports tallies and uploads photos; signs in with their Ethereum key
``constituency_head``  reviews the reports of their constituencies (``scope``)
``war_room``           the coalition's operations room: everything read-only, plus the feed
``coordinator``        an organisation's coordinator: registers and assigns its volunteers
``newsroom``           media partners: the open data at higher rate limits, plus the feed
``auditor``            anyone who wants a key for higher rate limits on the open data
``admin``              creates principals and registers volunteers
``anonymous``          (no credentials) the public: open data at the lowest rate limit

Credentials (``Authorization: Bearer <token>``)
===============================================
- **API keys** (every role but volunteer): ``tly_`` + 43 characters of URL-safe base64 (256
  random bits). Shown once when made; only their SHA-256 is stored, which is enough for
  keys of that strength (no password KDF is needed). A key is revoked by the admin.
- **Volunteer sessions**: a volunteer is a registered Ethereum address. To sign in they ask
  for a challenge (a text message with a one-time nonce and an expiry), sign it with
  ``personal_sign`` (EIP-191), and trade the signature for a session token::

      tvs2.<checksummed address>.<session generation>.<expiry, unix seconds>.<base64url HMAC-SHA256>

  The HMAC key is ``<data dir>/keys/session.secret`` (made on first use). Sessions are not
  stored, but each volunteer has a session generation (``volunteers.session_generation``)
  that every token carries: ending the address's sessions (``POST /v1/auth/signout``, or a
  coordinator's or the admin's revocation) increments it, and a token of an older
  generation is refused. So a token is good until it expires, its sessions are ended, or
  its volunteer is revoked; deleting the secret file ends every session. Tokens of the
  first format, ``tvs1.<address>.<expiry>.<mac>``, are still accepted until they expire,
  as generation 0.

Rate limits
===========
A token bucket per caller: per API key, per volunteer address, and per client IP for
anonymous callers. Each role has a rate (requests per second); a bucket holds
``rate × burst_seconds`` requests. An empty bucket raises ``RateLimited`` with the seconds
until the next request would be admitted.
"""

from __future__ import annotations

from ledger.errors import Forbidden
from ledger.people.callers import Caller, anonymous_caller, check_relay, check_submitter, require_role
from ledger.people.errors import InvalidScope, RateLimited, Unauthenticated
from ledger.people.keys import API_KEY_PREFIX, hash_api_key, new_api_key
from ledger.people.limits import RateLimiter
from ledger.people.registry import ORGANISATION_ID_PATTERN
from ledger.people.roles import ANONYMOUS, KEY_ROLES, RELAYING_ROLES, ROLES
from ledger.people.service import AccessService
from ledger.people.sessions import (
    LEGACY_SESSION_PREFIX,
    SESSION_PREFIX,
    SessionSigner,
    challenge_message,
    is_session_token,
    load_or_create_session_secret,
    recover_personal_sign,
)

__all__ = [
    "ANONYMOUS",
    "API_KEY_PREFIX",
    "KEY_ROLES",
    "LEGACY_SESSION_PREFIX",
    "ORGANISATION_ID_PATTERN",
    "RELAYING_ROLES",
    "ROLES",
    "SESSION_PREFIX",
    "AccessService",
    "Caller",
    "Forbidden",
    "InvalidScope",
    "RateLimited",
    "RateLimiter",
    "SessionSigner",
    "Unauthenticated",
    "anonymous_caller",
    "challenge_message",
    "check_relay",
    "check_submitter",
    "hash_api_key",
    "is_session_token",
    "load_or_create_session_secret",
    "new_api_key",
    "recover_personal_sign",
    "require_role",
]
