"""Opening a JSON-RPC endpoint: a checked ``Web3``, and whether a URL is the local chain."""

from __future__ import annotations

from urllib.parse import urlparse

from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware

from ledger.chain.reverts import translate_errors
from ledger.errors import ChainError

__all__ = ["connect", "is_local_url"]


def is_local_url(url: str | None) -> bool:
    """True for the embedded chain (``None``) and for URLs on a loopback address."""
    if url is None:
        return True
    host = urlparse(url).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


def connect(url: str, *, expected_chain_id: int | None = None, timeout: float = 30.0) -> Web3:
    """A Web3 on ``url`` that answered; checks the chain id when one is expected."""
    web3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
    # Harmless on other chains; needed to read blocks of proof-of-authority chains.
    web3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    with translate_errors(f"connect to {url}"):
        chain_id = web3.eth.chain_id
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ChainError(f"{url} serves chain id {chain_id}, but TALLY_CHAIN_ID is {expected_chain_id}")
    return web3
