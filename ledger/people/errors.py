"""The refusals of who may call: no (good) credentials, a bad scope, too many requests.

The refusal of a caller who may not do something is ``ledger.errors.Forbidden``, shared
with the rest of the ledger.
"""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = ["InvalidScope", "RateLimited", "Unauthenticated"]


class Unauthenticated(LedgerError, PermissionError):
    """No credentials where some are needed, or credentials that are not (or no longer) good."""


class InvalidScope(LedgerError, ValueError):
    """A principal's scope names areas that are not in the election."""


class RateLimited(LedgerError, RuntimeError):
    """Too many requests; ``retry_after`` says how many seconds to wait."""

    def __init__(self, message: str, *, retry_after: float):
        self.retry_after = retry_after
        super().__init__(message)
