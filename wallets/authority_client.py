"""For the admins of a ledger's authority log, offline: sign a ``tally-authority-v1`` entry
(``ledger.core.authority``) to send to ``POST /v1/authority/entries``. A change of admins
takes as many admins' entries, each for the same new ``admins`` and ``threshold``, as the
rule in force asks; a grant or revocation takes one."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ledger.core.authority import AUTHORITY_FORMAT
from ledger.core.record import sign_entry
from ledger.core.signing import address_from_private_key
from ledger.core.timefmt import format_time_seconds

__all__ = ["sign_authority_entry"]


def sign_authority_entry(
    fields: Mapping[str, Any], private_key: bytes, *, election: str, granted_at: datetime | None = None
) -> dict[str, Any]:
    """``fields`` (action, kind, subject and the kind's fields) as a signed entry in its JSON
    form: ``signer`` is the key's address, ``grant_id`` fresh unless given."""
    node: dict[str, Any] = {
        "format": AUTHORITY_FORMAT,
        "election": election,
        "grant_id": "g-" + secrets.token_hex(12),
        "granted_at": format_time_seconds(granted_at or datetime.now(UTC)),
        **fields,
        "signer": address_from_private_key(private_key),
    }
    node.pop("signature", None)
    signed = sign_entry(node, private_key)
    return {**node, "signature": "0x" + bytes(signed["signature"]).hex()}  # type: ignore[arg-type]
