"""Ethereum's keccak256 and EIP-55 address checksums: the one implementation of each.

CONSENSUS-CRITICAL. Leaf hashes, Merkle nodes, EIP-712 digests and the signer addresses
in every record go through these two functions; changing either breaks every anchored
root and every collected signature.

``keccak256`` is the original Keccak (Ethereum's), not NIST SHA3-256; the two differ in
padding: ``keccak256(b"")`` is ``c5d24601…5d85a470``, SHA3-256 of ``b""`` is ``a7ffc6f8…``.
It is safe-pysha3's C implementation, about five times faster per call than pycryptodome.
Hot loops (leaf hashing, tree building) may bind the hash constructor :data:`keccak_256`
locally and call ``keccak_256(data).digest()`` directly; they import it from here so that
there is one keccak in the project.

``checksum_address`` is EIP-55: an address's hex letters are upper-cased where the
matching hex digit of ``keccak256(lowercase hex of the address)`` is 8 or more::

    checksum_address("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")
    == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"

It accepts exactly ``0x`` + 40 hex digits in any case and raises
:class:`ledger.core.errors.InvalidEncoding` (a ``ValueError``) otherwise. It does not check
the case of its input: a caller that must refuse a wrong mixed-case checksum compares the
input with the result (``ledger.core.leaf.leaf_values`` does).
"""

from __future__ import annotations

from sha3 import keccak_256 as keccak_256  # safe-pysha3: C keccak, ~5x faster per call than pycryptodome

from ledger.core.errors import InvalidEncoding

__all__ = ["address_bytes", "checksum_address", "keccak256"]

# EIP-55: a hex digit of keccak256(lowercase address) that is >= 8 upper-cases the letter at
# the same position. These masks act on ASCII bytes; subtracting 0x20 upper-cases a-f.
_HIGH_DIGIT_MASK = bytes(0x20 if chr(byte) in "89abcdef" else 0 for byte in range(256))
_LETTER_MASK = bytes(0xFF if chr(byte) in "abcdef" else 0 for byte in range(256))


def keccak256(data: bytes) -> bytes:
    """Ethereum's keccak256 (the original Keccak padding, not NIST SHA3-256)."""
    digest: bytes = keccak_256(data).digest()
    return digest


def address_bytes(address: object, where: str = "address") -> bytes:
    """The 20 bytes of ``address``, which must be a str of ``0x`` + 40 hex digits (any case);
    ``where`` names it in the ``InvalidEncoding`` raised otherwise."""
    if not isinstance(address, str):
        raise InvalidEncoding(f"{where} must be a str holding a 0x-prefixed address, got {type(address).__name__}")
    address = str.__str__(address)  # a plain str, whatever a subclass overrides
    raw = b""
    if len(address) == 42 and address.startswith("0x"):
        try:
            raw = bytes.fromhex(address[2:])
        except ValueError:
            pass
    if len(raw) != 20:  # fromhex skips spaces: 40 characters holding one give fewer bytes
        raise InvalidEncoding(f"{where} must be a 20-byte hex address, '0x' followed by 40 hex digits, got {address!r}")
    return raw


def checksum_address(address: str) -> str:
    """The EIP-55 form of ``address``, which must be ``0x`` + 40 hex digits (any case)."""
    raw = address_bytes(address)
    lower = raw.hex().encode("ascii")
    high_digits = keccak_256(lower).hexdigest()[:40].encode("ascii").translate(_HIGH_DIGIT_MASK)
    upper_mask = int.from_bytes(high_digits, "big") & int.from_bytes(lower.translate(_LETTER_MASK), "big")
    return "0x" + (int.from_bytes(lower, "big") - upper_mask).to_bytes(40, "big").decode("ascii")
