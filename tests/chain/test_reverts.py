"""Revert decoding (``ledger.chain.reverts``): the contract's refusals named with their
arguments, decoded from the committed ABI, without a node."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as abi_encode
from web3.exceptions import ContractCustomError, ContractLogicError

from ledger.chain.artifacts import load_artifact
from ledger.chain.reverts import ContractReverted, decode_revert, translate_errors
from ledger.core.hashing import keccak256
from ledger.errors import ChainError

ABI = load_artifact()["abi"]


def revert_data(signature: str, types: list[str], values: list[object]) -> bytes:
    return keccak256(signature.encode())[:4] + abi_encode(types, values)


def test_a_custom_error_is_named_with_its_arguments() -> None:
    data = revert_data("BatchOutOfOrder(uint256,uint256)", ["uint256", "uint256"], [7, 6])
    assert decode_revert(ABI, data) == ("BatchOutOfOrder", {"expected": 7, "given": 6})


def test_solidity_error_strings_and_panics_are_named_without_an_abi() -> None:
    assert decode_revert([], revert_data("Error(string)", ["string"], ["no"])) == ("Error", {"message": "no"})
    assert decode_revert([], revert_data("Panic(uint256)", ["uint256"], [0x11])) == ("Panic", {"code": 0x11})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x01\x02", ("UnknownRevert", {"data": "0x0102"})),
        (bytes.fromhex("deadbeef") + bytes(32), ("UnknownRevert", {"data": "0xdeadbeef" + "00" * 32})),
        (keccak256(b"UnknownBatch(uint256)")[:4] + b"\x01", ("UnknownBatch", {"data": "0x01"})),
    ],
)
def test_what_cannot_be_decoded_is_shown_as_bytes(data: bytes, expected: tuple[str, dict[str, object]]) -> None:
    assert decode_revert(ABI, data) == expected


def test_web3_errors_become_chain_errors_and_reverts_contract_reverted() -> None:
    data = revert_data("UnknownBatch(uint256)", ["uint256"], [3])
    with pytest.raises(ContractReverted) as refused, translate_errors("read batch(3)", ABI):
        raise ContractCustomError("0x" + data.hex(), data="0x" + data.hex())
    assert (refused.value.error_name, refused.value.arguments) == ("UnknownBatch", {"batchId": 3})
    assert str(refused.value) == "read batch(3): the contract refused with UnknownBatch(batchId=3)"
    message = r"anchor: the contract refused with Error\(message='nope'\)"
    with pytest.raises(ContractReverted, match=message), translate_errors("anchor", ABI):
        raise ContractLogicError("nope", data=None)
    with pytest.raises(ChainError, match="read the chain id: boom") as failed, translate_errors("read the chain id"):
        raise OSError("boom")
    assert not isinstance(failed.value, ContractReverted)
