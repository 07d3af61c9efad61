"""Canonical DAG-CBOR: the byte encoding of every record, decision and manifest node.

CONSENSUS-CRITICAL. A record's CID is the sha2-256 of these bytes; changing the
encoding of any value changes every CID and breaks every anchored proof.

The encoding follows the IPLD DAG-CBOR specification strictly:
- integers in the shortest form, from -2**64 to 2**64-1;
- byte strings (major type 2) and UTF-8 text strings (major type 3), definite length;
- lists (major type 4) and maps (major type 5) of definite length;
- map keys are text strings only, sorted by encoded length first, then bytewise
  (so ``"to"`` comes before ``"from"``); duplicate keys are refused;
- links are tag 42 around a byte string of ``0x00`` followed by the binary CID;
- ``true``, ``false`` and ``null`` (``None``);
- floats are refused: no record field is fractional, and refusing them removes the
  one place where two encoders commonly disagree.

The decoder is as strict as the encoder: it refuses anything that would not re-encode
to the same bytes (non-minimal integers, unsorted or duplicate keys, indefinite
lengths, other tags, trailing bytes), so that ``encode(decode(b)) == b`` always.

Worked example: ``{"b": 1, "aa": [True, None]}`` encodes as
``a2 61 62 01 62 61 61 82 f5 f6`` (key "b" before "aa": shorter first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ledger.core.cid import CID
from ledger.core.errors import InvalidCID, InvalidEncoding

__all__ = ["decode", "encode"]

_CID_TAG = 42
_MAX_UINT64 = 2**64 - 1
_MAX_DEPTH = 64


def _head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes((major << 5 | value,))
    if value < 0x100:
        return bytes((major << 5 | 24, value))
    if value < 0x10000:
        return bytes((major << 5 | 25,)) + value.to_bytes(2, "big")
    if value < 0x100000000:
        return bytes((major << 5 | 26,)) + value.to_bytes(4, "big")
    return bytes((major << 5 | 27,)) + value.to_bytes(8, "big")


_SMALL_HEADS = tuple(tuple(bytes((major << 5 | value,)) for value in range(24)) for major in range(8))


def _sort_key(pair: tuple[bytes, object]) -> tuple[int, bytes]:
    return len(pair[0]), pair[0]


def _encode_into(out: bytearray, value: object, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise InvalidEncoding(f"nesting deeper than {_MAX_DEPTH} levels")
    # Fast paths for the exact types that make up nearly every node; each does what the
    # general branch below does for that type (the vectors and property tests pin both).
    kind = type(value)
    if kind is str:
        data = value.encode("utf-8")  # type: ignore[attr-defined]
        out += _SMALL_HEADS[3][len(data)] if len(data) < 24 else _head(3, len(data))
        out += data
        return
    if kind is int and 0 <= value < 24:  # type: ignore[operator]
        out += _SMALL_HEADS[0][value]  # type: ignore[call-overload]
        return
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        if 0 <= value <= _MAX_UINT64:
            out += _head(0, value)
        elif -(2**64) <= value < 0:
            out += _head(1, -1 - value)
        else:
            raise InvalidEncoding(f"integer {value} is outside the 64-bit range")
    elif isinstance(value, str):
        data = value.encode("utf-8")
        out += _head(3, len(data))
        out += data
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        out += _head(2, len(data))
        out += data
    elif isinstance(value, CID):
        link = b"\x00" + value.bytes
        out += _head(6, _CID_TAG)
        out += _head(2, len(link))
        out += link
    elif isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEncoding(f"map keys must be strings, got {type(key).__name__} {key!r}")
            items.append((key.encode("utf-8"), item))
        items.sort(key=_sort_key)
        out += _head(5, len(items))
        for key_bytes, item in items:
            out += _head(3, len(key_bytes))
            out += key_bytes
            _encode_into(out, item, depth + 1)
    elif isinstance(value, Sequence):
        out += _head(4, len(value))
        for item in value:
            _encode_into(out, item, depth + 1)
    elif isinstance(value, float):
        raise InvalidEncoding(f"floats are not allowed in ledger nodes, got {value!r}")
    else:
        raise InvalidEncoding(f"cannot encode {type(value).__name__} as DAG-CBOR")


def encode(value: object) -> bytes:
    """Encode ``value`` (dict/list/str/bytes/int/bool/None/CID) as canonical DAG-CBOR."""
    out = bytearray()
    _encode_into(out, value, 0)
    return bytes(out)


class _Decoder:
    def __init__(self, data: bytes):
        self.data = data
        self.position = 0

    def _take(self, count: int) -> bytes:
        end = self.position + count
        if end > len(self.data):
            raise InvalidEncoding(f"truncated input: need {count} bytes at offset {self.position}")
        chunk = self.data[self.position : end]
        self.position = end
        return chunk

    def _argument(self, info: int) -> int:
        if info < 24:
            return info
        if info == 24:
            value = self._take(1)[0]
            minimum = 24
        elif info == 25:
            value = int.from_bytes(self._take(2), "big")
            minimum = 0x100
        elif info == 26:
            value = int.from_bytes(self._take(4), "big")
            minimum = 0x10000
        elif info == 27:
            value = int.from_bytes(self._take(8), "big")
            minimum = 0x100000000
        else:
            raise InvalidEncoding(f"indefinite or reserved length (additional info {info}) at offset {self.position - 1}")
        if value < minimum:
            raise InvalidEncoding(f"integer {value} is not in its shortest form at offset {self.position}")
        return value

    def value(self, depth: int = 0) -> object:
        if depth > _MAX_DEPTH:
            raise InvalidEncoding(f"nesting deeper than {_MAX_DEPTH} levels")
        start = self.position
        initial = self._take(1)[0]
        major, info = initial >> 5, initial & 0x1F
        if major == 7:
            if initial == 0xF4:
                return False
            if initial == 0xF5:
                return True
            if initial == 0xF6:
                return None
            raise InvalidEncoding(f"unsupported simple value or float 0x{initial:02x} at offset {start}")
        argument = self._argument(info)
        if major == 0:
            return argument
        if major == 1:
            return -1 - argument
        if major == 2:
            return self._take(argument)
        if major == 3:
            try:
                return self._take(argument).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidEncoding(f"invalid UTF-8 in text string at offset {start}") from exc
        if major == 4:
            return [self.value(depth + 1) for _ in range(argument)]
        if major == 5:
            result: dict[str, object] = {}
            previous: bytes | None = None
            for _ in range(argument):
                key_start = self.position
                key_initial = self._take(1)[0]
                if key_initial >> 5 != 3:
                    raise InvalidEncoding(f"map key at offset {key_start} is not a text string")
                key_bytes = self._take(self._argument(key_initial & 0x1F))
                if previous is not None and (len(key_bytes), key_bytes) <= (len(previous), previous):
                    raise InvalidEncoding(f"map keys out of canonical order or duplicated at offset {key_start}")
                previous = key_bytes
                try:
                    key = key_bytes.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InvalidEncoding(f"invalid UTF-8 in map key at offset {key_start}") from exc
                result[key] = self.value(depth + 1)
            return result
        if major == 6:
            if argument != _CID_TAG:
                raise InvalidEncoding(f"tag {argument} at offset {start}; DAG-CBOR allows only tag 42")
            link = self.value(depth + 1)
            if not isinstance(link, bytes) or not link.startswith(b"\x00"):
                raise InvalidEncoding(f"tag 42 at offset {start} must wrap bytes starting with 0x00")
            try:
                return CID.from_bytes(link[1:])
            except InvalidCID as exc:
                raise InvalidEncoding(f"bad CID in link at offset {start}: {exc}") from exc
        raise InvalidEncoding(f"unsupported major type {major} at offset {start}")  # pragma: no cover


def decode(data: bytes) -> object:
    """Decode one canonical DAG-CBOR value; refuse non-canonical input and trailing bytes."""
    decoder = _Decoder(bytes(data))
    value = decoder.value()
    if decoder.position != len(decoder.data):
        raise InvalidEncoding(f"{len(decoder.data) - decoder.position} trailing bytes after the value")
    return value
