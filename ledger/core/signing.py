"""EIP-712 signatures over ledger entries (tally records and decisions).

CONSENSUS-CRITICAL. Every signed entry in the ledger is checked with this hashing;
changing it invalidates every signature already collected.

All entries are signed as one EIP-712 type, so that any wallet can show what it signs:

    EIP712Domain(string name,string version)
        name = "Tally Ledger", version = "1"   (no chainId: entries live off-chain and
        must stay valid if the anchoring chain changes)

    LedgerEntry(string format,string election,string subject,string entryId,
                string createdAt,address signer,bytes32 contentDigest)

``contentDigest`` is the sha2-256 of the canonical DAG-CBOR encoding of the entry with
its ``signature`` field removed: it binds every field of the entry, while the readable
fields above let a wallet show the volunteer what they are signing. For a tally record,
``subject`` is the polling unit, ``entryId`` the submission id and ``createdAt`` the
submission time; a decision maps its own fields (see ``ledger.core.record``).

The signature is 65 bytes ``r ‖ s ‖ v`` with ``v`` in {27, 28}; ``s`` must be in the
lower half of the curve order (EIP-2), so every signature has exactly one valid form.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from functools import lru_cache

import coincurve

from ledger.core.errors import InvalidEncoding, InvalidSignature
from ledger.core.hashing import checksum_address
from ledger.core.hashing import keccak256 as keccak

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "EntryFields",
    "address_from_private_key",
    "entry_digest",
    "recover_signer",
    "sign_digest",
    "to_checksum_address",
]

DOMAIN_NAME = "Tally Ledger"
DOMAIN_VERSION = "1"
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

_DOMAIN_TYPE_HASH = keccak(b"EIP712Domain(string name,string version)")
_DOMAIN_SEPARATOR = keccak(_DOMAIN_TYPE_HASH + keccak(DOMAIN_NAME.encode()) + keccak(DOMAIN_VERSION.encode()))
ENTRY_TYPE = (
    "LedgerEntry(string format,string election,string subject,string entryId,"
    "string createdAt,address signer,bytes32 contentDigest)"
)
_ENTRY_TYPE_HASH = keccak(ENTRY_TYPE.encode())


@dataclass(frozen=True, slots=True)
class EntryFields:
    """The readable fields of an entry, as they go into the EIP-712 message."""

    format: str
    election: str
    subject: str
    entry_id: str
    created_at: str
    signer: str
    content_digest: bytes

    def typed_data(self) -> dict[str, object]:
        """The EIP-712 message as JSON (``eth_signTypedData_v4``), for wallets."""
        return {
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}],
                "LedgerEntry": [
                    {"name": "format", "type": "string"},
                    {"name": "election", "type": "string"},
                    {"name": "subject", "type": "string"},
                    {"name": "entryId", "type": "string"},
                    {"name": "createdAt", "type": "string"},
                    {"name": "signer", "type": "address"},
                    {"name": "contentDigest", "type": "bytes32"},
                ],
            },
            "primaryType": "LedgerEntry",
            "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION},
            "message": {
                "format": self.format,
                "election": self.election,
                "subject": self.subject,
                "entryId": self.entry_id,
                "createdAt": self.created_at,
                "signer": self.signer,
                "contentDigest": "0x" + self.content_digest.hex(),
            },
        }


def to_checksum_address(address: str) -> str:
    """EIP-55 form of a 0x-prefixed 20-byte hex address; raises ``InvalidSignature`` if malformed."""
    if not isinstance(address, str) or len(address) != 42 or not address.startswith(("0x", "0X")):
        raise InvalidSignature(f"{address!r} is not an address: expected 0x followed by 40 hex digits")
    return _checksum(address)


@lru_cache(maxsize=1 << 16)
def _checksum(address: str) -> str:
    """The EIP-55 form (``ledger.core.hashing``) of a 42-character ``0x`` or ``0X`` string
    (pure, so cached: the same few hundred thousand volunteer addresses come back all night)."""
    try:
        return checksum_address("0x" + address[2:])
    except InvalidEncoding:  # fromhex skips whitespace: "00 11…" is shorter, refused too
        raise InvalidSignature(f"{address!r} is not an address: it has non-hex characters") from None


def entry_digest(fields: EntryFields) -> bytes:
    """The 32-byte EIP-712 digest that the signer signs."""
    if len(fields.content_digest) != 32:
        raise InvalidSignature(f"contentDigest must be 32 bytes, got {len(fields.content_digest)}")
    signer = bytes.fromhex(to_checksum_address(fields.signer)[2:])
    struct_hash = keccak(
        _ENTRY_TYPE_HASH
        + keccak(fields.format.encode())
        + keccak(fields.election.encode())
        + keccak(fields.subject.encode())
        + keccak(fields.entry_id.encode())
        + keccak(fields.created_at.encode())
        + signer.rjust(32, b"\0")
        + fields.content_digest
    )
    return keccak(b"\x19\x01" + _DOMAIN_SEPARATOR + struct_hash)


@lru_cache(maxsize=4096)
def _private_key(secret: bytes) -> coincurve.PrivateKey:
    """A key object, kept: building one derives its public key, which costs as much as a
    signature (the ledger signs every receipt and automatic decision with the same keys)."""
    return coincurve.PrivateKey(secret)


def sign_digest(digest: bytes, private_key: bytes) -> bytes:
    """Sign a 32-byte digest; returns ``r ‖ s ‖ v`` with v in {27, 28} and low s."""
    signature = _private_key(bytes(private_key)).sign_recoverable(digest, hasher=None)
    return signature[:64] + bytes((signature[64] + 27,))


def address_from_private_key(private_key: bytes) -> str:
    public = coincurve.PrivateKey(private_key).public_key.format(compressed=False)[1:]
    return to_checksum_address("0x" + keccak(public)[-20:].hex())


def recover_signer(digest: bytes, signature: bytes) -> str:
    """Recover the checksummed address that made ``signature`` over ``digest``."""
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != 65:
        got = len(signature) if isinstance(signature, (bytes, bytearray)) else type(signature).__name__
        raise InvalidSignature(f"a signature is 65 bytes (r, s, v), got {got}")
    v = signature[64]
    if v not in (27, 28):
        raise InvalidSignature(f"signature v must be 27 or 28, got {v}")
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < s <= _SECP256K1_N // 2:
        raise InvalidSignature("signature s is not in the lower half of the curve order (EIP-2)")
    try:
        public = coincurve.PublicKey.from_signature_and_message(bytes(signature[:64]) + bytes((v - 27,)), digest, hasher=None)
    except Exception as exc:  # coincurve raises bare Exception on unrecoverable input
        raise InvalidSignature(f"signature does not recover to any key: {exc}") from None
    return to_checksum_address("0x" + keccak(public.format(compressed=False)[1:])[-20:].hex())


def check_signer(digest: bytes, signature: bytes, expected: str) -> None:
    """Raise ``InvalidSignature`` unless ``signature`` over ``digest`` was made by ``expected``."""
    recovered = recover_signer(digest, signature)
    if not hmac.compare_digest(recovered.lower(), to_checksum_address(expected).lower()):
        raise InvalidSignature(f"signature was made by {recovered}, not by the stated signer {to_checksum_address(expected)}")
