"""Content identifiers (CIDs), as IPFS computes them.

CONSENSUS-CRITICAL. Record identities and Merkle leaves are built from the
strings this module prints. Changing any output here breaks every proof that
has already been anchored.

A CIDv1 is ``<version varint><codec varint><multihash>`` and its text form is
multibase base32 (lowercase, no padding) with the prefix ``b``. The multihash
is ``<hash code varint><length varint><digest>``; this project only creates
sha2-256 (code 0x12, 32 bytes). CIDv0 (base58btc, ``Qm…``, implicitly dag-pb)
is read, so that links written by older tools can be followed, but never made.

Worked example: the raw block of the empty byte string has digest
``e3b0c442…b855`` and CID ``bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku``.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
from dataclasses import dataclass, field

from ledger.core.errors import InvalidCID

__all__ = [
    "CID",
    "DAG_CBOR",
    "DAG_JSON",
    "DAG_PB",
    "RAW",
    "SHA2_256",
    "decode_varint",
    "encode_varint",
]

RAW = 0x55
DAG_PB = 0x70
DAG_CBOR = 0x71
DAG_JSON = 0x0129
SHA2_256 = 0x12

_CODEC_NAMES = {RAW: "raw", DAG_PB: "dag-pb", DAG_CBOR: "dag-cbor", DAG_JSON: "dag-json"}
_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, as multiformats uses it."""
    if value < 0:
        raise ValueError(f"varint must be non-negative, got {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Return ``(value, next_offset)``; refuse truncated and non-minimal varints."""
    value = 0
    shift = 0
    position = offset
    while True:
        if position >= len(data):
            raise InvalidCID("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and position - offset > 1:
                raise InvalidCID("varint is not minimally encoded")
            return value, position
        shift += 7
        if shift > 63:
            raise InvalidCID("varint is longer than 9 bytes")


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, remainder = divmod(number, 58)
        out = _BASE58_ALPHABET[remainder] + out
    leading_zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading_zeros + out


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        index = _BASE58_ALPHABET.find(char)
        if index < 0:
            raise InvalidCID(f"{char!r} is not a base58btc character")
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading_ones = len(text) - len(text.lstrip("1"))
    return b"\0" * leading_ones + body


@dataclass(frozen=True, slots=True)
class CID:
    """A parsed CID. Build one with :meth:`of`, :meth:`parse` or :meth:`from_bytes`."""

    version: int
    codec: int
    multihash: bytes
    _text: str | None = field(default=None, init=False, repr=False, compare=False)
    """The text form, computed once (a CID is printed many times on its way through the ledger)."""

    @classmethod
    def of(cls, codec: int, block: bytes) -> CID:
        """The CIDv1 of ``block`` under ``codec``, hashed with sha2-256."""
        return cls(1, codec, bytes((SHA2_256, 32)) + hashlib.sha256(block).digest())

    @classmethod
    def from_digest(cls, codec: int, digest: bytes) -> CID:
        if len(digest) != 32:
            raise InvalidCID(f"a sha2-256 digest has 32 bytes, got {len(digest)}")
        return cls(1, codec, bytes((SHA2_256, 32)) + digest)

    @classmethod
    def from_bytes(cls, data: bytes) -> CID:
        """Parse the binary form; the whole input must be one CID."""
        cid, end = cls.read(data, 0)
        if end != len(data):
            raise InvalidCID(f"{len(data) - end} trailing bytes after the CID")
        return cid

    @classmethod
    def read(cls, data: bytes, offset: int = 0) -> tuple[CID, int]:
        """Parse a binary CID at ``offset`` and return it with the offset after it."""
        if data[offset : offset + 2] == b"\x12\x20":
            end = offset + 34
            if end > len(data):
                raise InvalidCID("truncated CIDv0 multihash")
            return cls(0, DAG_PB, bytes(data[offset:end])), end
        version, position = decode_varint(data, offset)
        if version != 1:
            raise InvalidCID(f"unsupported CID version {version}")
        codec, position = decode_varint(data, position)
        hash_code, after_code = decode_varint(data, position)
        length, after_length = decode_varint(data, after_code)
        end = after_length + length
        if end > len(data):
            raise InvalidCID(f"multihash says {length} digest bytes, only {len(data) - after_length} remain")
        del hash_code
        return cls(1, codec, bytes(data[position:end])), end

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse the text form: base32 ``b…`` for v1, base58btc ``Qm…`` for v0."""
        if not isinstance(text, str) or not text:
            raise InvalidCID("a CID must be a non-empty string")
        if text.startswith("Qm") and len(text) == 46:
            return cls.from_bytes(_b58decode(text))
        if text[0] != "b":
            raise InvalidCID(f"only base32 ('b…') CIDv1 and 'Qm…' CIDv0 are accepted, got {text[:12]!r}")
        body = text[1:]
        if body != body.lower():
            raise InvalidCID("base32 CIDs are lowercase")
        try:
            raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
        except ValueError as exc:
            raise InvalidCID(f"{text[:16]!r}… is not valid base32") from exc
        cid = cls.from_bytes(raw)
        if str(cid) != text:
            raise InvalidCID(f"{text!r} is not the canonical text form of a CID")
        return cid

    @property
    def bytes(self) -> bytes:
        if self.version == 0:
            return self.multihash
        return encode_varint(1) + encode_varint(self.codec) + self.multihash

    @property
    def hash_code(self) -> int:
        return decode_varint(self.multihash, 0)[0]

    @property
    def digest(self) -> builtins.bytes:  # the method ``bytes`` above shadows the builtin here
        _, position = decode_varint(self.multihash, 0)
        length, position = decode_varint(self.multihash, position)
        return self.multihash[position : position + length]

    @property
    def codec_name(self) -> str:
        return _CODEC_NAMES.get(self.codec, hex(self.codec))

    def verify_block(self, block: builtins.bytes) -> bool:
        """True when ``block`` hashes to this CID (sha2-256 only)."""
        return self.hash_code == SHA2_256 and hashlib.sha256(block).digest() == self.digest

    def __str__(self) -> str:
        text = self._text
        if text is None:
            if self.version == 0:
                text = _b58encode(self.multihash)
            else:
                text = "b" + base64.b32encode(self.bytes).decode("ascii").lower().rstrip("=")
            object.__setattr__(self, "_text", text)
        return text

    def __repr__(self) -> str:
        return f"CID({self})"
