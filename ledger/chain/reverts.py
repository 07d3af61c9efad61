"""Chain errors for people: web3 / HTTP failures become ``ChainError``, and a refusal by a
contract becomes :class:`ContractReverted`, naming the Solidity error and its arguments
(``BatchOutOfOrder(expected=7, given=6)``) decoded with the contract's ABI."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import requests
from eth_abi.abi import decode as abi_decode
from hexbytes import HexBytes
from web3.exceptions import ContractCustomError, ContractLogicError, Web3Exception

from ledger.core.hashing import keccak256
from ledger.errors import ChainError, LedgerError

__all__ = ["ContractReverted", "decode_revert", "translate_errors"]


class ContractReverted(ChainError):
    """The contract refused a call or transaction with Solidity error ``error_name(arguments)``."""

    def __init__(self, action: str, error_name: str, arguments: dict[str, object]):
        self.action = action
        self.error_name = error_name
        self.arguments = arguments
        shown = ", ".join(f"{key}={_show(value)}" for key, value in arguments.items())
        super().__init__(f"{action}: the contract refused with {error_name}({shown})")


def _error_table(abi: Sequence[dict[str, Any]]) -> dict[bytes, tuple[str, list[str], list[str]]]:
    table = {
        bytes.fromhex("08c379a0"): ("Error", ["message"], ["string"]),
        bytes.fromhex("4e487b71"): ("Panic", ["code"], ["uint256"]),
    }
    for entry in abi:
        if entry.get("type") == "error":
            types = [item["type"] for item in entry["inputs"]]
            selector = keccak256(f"{entry['name']}({','.join(types)})".encode())[:4]
            table[selector] = (entry["name"], [item["name"] for item in entry["inputs"]], types)
    return table


def decode_revert(abi: Sequence[dict[str, Any]], data: bytes) -> tuple[str, dict[str, object]]:
    """Names the Solidity error in revert ``data``: ``("BatchOutOfOrder", {"expected": 2, "given": 3})``."""
    if len(data) < 4:
        return "UnknownRevert", {"data": "0x" + data.hex()}
    known = _error_table(abi).get(data[:4])
    if known is None:
        return "UnknownRevert", {"data": "0x" + data.hex()}
    name, names, types = known
    try:
        values = abi_decode(types, data[4:])
    except Exception:  # malformed arguments: show the bytes rather than fail
        return name, {"data": "0x" + data[4:].hex()}
    return name, dict(zip(names, values, strict=True))


def _show(value: object) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value) if isinstance(value, str) else str(value)


@contextmanager
def translate_errors(action: str, abi: Sequence[dict[str, Any]] = ()) -> Iterator[None]:
    """Turns web3 / HTTP errors raised inside into ChainError (reverts into ContractReverted)."""
    try:
        yield
    except LedgerError:
        raise
    except ContractCustomError as error:
        name, arguments = decode_revert(abi, bytes(HexBytes(str(error.data))))
        raise ContractReverted(action, name, arguments) from error
    except ContractLogicError as error:
        data = error.data if isinstance(error.data, str) and error.data.startswith("0x") else None
        if data is not None and len(data) >= 10:
            name, arguments = decode_revert(abi, bytes(HexBytes(data)))
        else:
            name, arguments = "Error", {"message": error.message or str(error)}
        raise ContractReverted(action, name, arguments) from error
    except (Web3Exception, requests.RequestException, OSError, ValueError) as error:
        raise ChainError(f"{action}: {error}") from error
