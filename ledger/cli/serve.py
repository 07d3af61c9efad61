"""The one door from the command line to the HTTP layer: ``tally serve`` and the demo's server.

The command line is the composition root. This module is the only place under ``ledger``
that imports ``api`` (import-linter checks it, see pyproject.toml).
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["create_admin_key", "serve_app"]


def create_admin_key(settings: Any, name: str) -> tuple[str, str]:
    """Make an admin API key named ``name``; returns its id and the token, shown only once."""
    from api.state import AppState

    state = AppState.open(settings)
    try:
        principal, token = state.access.create_principal(role="admin", name=name)
    finally:
        state.close()
    return principal.id, token


def serve_app(settings: Any = None, *, host: str | None = None, port: int | None = None, access_log: bool = False) -> None:
    """Run the HTTP API under uvicorn (one process, uvloop and httptools) until interrupted,
    with the aggregates, sealing and anchoring loops of ``ledger.runtime`` in the background."""
    import gc
    import logging

    import uvicorn

    from api.main import create_app
    from api.runtime import uvicorn_options
    from ledger.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    # The event loop shares the GIL with the writer and background threads; a shorter switch
    # interval than the default 5 ms keeps answers waiting less behind them.
    sys.setswitchinterval(0.0005)
    settings = settings or Settings()
    api = create_app(settings)
    # The election definition and the aggregates are large and live as long as the process:
    # keep them out of the garbage collector's full passes, which would pause every answer.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        api,
        host=host or settings.host,
        port=port or settings.port,
        loop="uvloop",
        http="httptools",
        access_log=access_log,
        log_level="info",
        timeout_graceful_shutdown=5,
        **uvicorn_options(settings),  # forwarded headers from trusted proxies only, keep-alive timeout
    )
