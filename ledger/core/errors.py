"""The exceptions of the consensus-critical core: malformed CIDs and encodings, invalid
tallies, signatures and proofs. ``ledger.errors`` re-exports them under the one tree
of the whole ledger (drawn there); ``ledger.core`` imports nothing else of the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _restore(cls: type[LedgerError], args: tuple[Any, ...], state: dict[str, Any]) -> LedgerError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class LedgerError(Exception):
    """Root of every error this package raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as it is (prepare workers send errors back to the API), not rebuilt
        through ``__init__``, which may add to the message or take other arguments."""
        return _restore, (type(self), self.args, self.__dict__)


class InvalidCID(LedgerError, ValueError):
    pass


class InvalidEncoding(LedgerError, ValueError):
    pass


@dataclass(frozen=True)
class FieldError:
    """One problem with one field. ``path`` is a tuple like ``("party_list", "votes", "31")``."""

    path: tuple[str | int, ...]
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"path": list(self.path), "message": self.message}

    def __str__(self) -> str:
        where = ".".join(str(part) for part in self.path) or "(record)"
        return f"{where}: {self.message}"


class InvalidTally(LedgerError, ValueError):
    def __init__(self, errors: list[FieldError]):
        self.errors = list(errors)
        super().__init__("; ".join(str(error) for error in self.errors))


class InvalidSignature(LedgerError, ValueError):
    pass


class InvalidProof(LedgerError, ValueError):
    def __init__(self, message: str, *, expected_root: str | None = None, computed_root: str | None = None):
        self.expected_root = expected_root
        self.computed_root = computed_root
        super().__init__(message)
