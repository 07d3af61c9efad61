"""The exceptions of the ledger. Each is also a builtin, so callers may catch either.

    LedgerError
    ├── InvalidCID (ValueError)            a CID's text or bytes are malformed
    ├── InvalidEncoding (ValueError)       bytes are not canonical DAG-CBOR / CAR / dag-pb
    ├── InvalidTally (ValueError)          a tally failed validation; carries field errors
    ├── InvalidSignature (ValueError)      an EIP-712 signature is missing or wrong
    ├── InvalidProof (ValueError)          a Merkle proof does not lead to the expected root
    ├── ConflictingSubmission (ValueError) a submission id was reused with different content
    ├── AlreadyExists (ValueError)         an organisation or a person is registered already
    ├── NotFound (LookupError)             a record, block, unit or batch is unknown
    │   └── BlockNotFound                  the content store lacks a block
    ├── Forbidden (PermissionError)        this caller (their role, level, organisation or
    │                                      assignments) may not do this
    ├── ContentStoreError (OSError)        the content store (disk or IPFS node) failed
    ├── KeystoreError (ValueError)         a key file is missing, malformed or the password is wrong
    └── ChainError (ConnectionError)       the JSON-RPC endpoint failed or refused
        ├── ChainWiped                     the chain no longer holds our deployment
        ├── AnchorMismatch                 the chain holds a different root than our batch
        └── ContractReverted               (ledger.chain.reverts) the contract refused, with its error

The API maps these to HTTP statuses in one place (api/errors.py); ledger code never
raises HTTP errors.
"""

from __future__ import annotations

from ledger.core.errors import (
    FieldError,
    InvalidCID,
    InvalidEncoding,
    InvalidProof,
    InvalidSignature,
    InvalidTally,
    LedgerError,
)

__all__ = [
    "LedgerError",
    "InvalidCID",
    "InvalidEncoding",
    "FieldError",
    "InvalidTally",
    "InvalidSignature",
    "InvalidProof",
    "ConflictingSubmission",
    "AlreadyExists",
    "NotFound",
    "BlockNotFound",
    "Forbidden",
    "ContentStoreError",
    "ChainError",
    "KeystoreError",
    "ChainWiped",
    "AnchorMismatch",
]


class ConflictingSubmission(LedgerError, ValueError):
    pass


class AlreadyExists(LedgerError, ValueError):
    """What a request would create is there already (an organisation id, a person's address)."""


class NotFound(LedgerError, LookupError):
    pass


class BlockNotFound(NotFound):
    pass


class Forbidden(LedgerError, PermissionError):
    """The one "not allowed": good credentials (or a known person), but what their role,
    level, organisation or assignments allow does not include this."""


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
