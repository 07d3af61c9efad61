"""The exceptions of the ledger. Each is also a builtin, so callers may catch either.

    LedgerError
    ├── InvalidCID (ValueError)            a CID's text or bytes are malformed
    ├── InvalidEncoding (ValueError)       bytes are not canonical DAG-CBOR / CAR / dag-pb
    ├── InvalidTally (ValueError)          a tally failed validation; carries field errors
    ├── InvalidSignature (ValueError)      an EIP-712 signature is missing or wrong
    ├── InvalidProof (ValueError)          a Merkle proof does not lead to the expected root
    ├── ConflictingSubmission (ValueError) a submission id was reused with different content
    ├── NotFound (LookupError)             a record, block, unit or batch is unknown
    │   └── BlockNotFound                  the content store lacks a block
    ├── ContentStoreError (OSError)        the content store (disk or IPFS node) failed
    ├── KeystoreError (ValueError)         a key file is missing, malformed or the password is wrong
    └── ChainError (ConnectionError)       the JSON-RPC endpoint failed or refused
        ├── ChainWiped                     the chain no longer holds our deployment
        ├── AnchorMismatch                 the chain holds a different root than our batch
        └── ContractReverted               (ledger.chain.evidence) the contract refused, with its error

The API maps these to HTTP statuses in one place (api/errors.py); ledger code never
raises HTTP errors.
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


class ConflictingSubmission(LedgerError, ValueError):
    pass


class NotFound(LedgerError, LookupError):
    pass


class BlockNotFound(NotFound):
    pass


class ContentStoreError(LedgerError, OSError):
    pass


class ChainError(LedgerError, ConnectionError):
    pass


class KeystoreError(LedgerError, ValueError):
    """A key file is missing, malformed or does not open with the password given."""


class ChainWiped(ChainError):
    """The chain no longer holds the deployment recorded in the manifest."""


class AnchorMismatch(ChainError):
    """The chain holds a different root for a batch than this ledger sealed: stop and investigate."""
