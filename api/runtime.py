"""How ``tally serve`` runs the HTTP service under uvicorn. (The background loops of the
serving process are the ledger's: ``ledger.runtime``.)"""

from __future__ import annotations

from typing import Any

from ledger.settings import Settings

__all__ = ["uvicorn_options"]


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn settings that ``tally serve`` takes from ``settings``.

    - Forwarded headers (``X-Forwarded-For``, ``X-Forwarded-Proto``) are believed only from
      ``TALLY_TRUSTED_PROXIES``; by default from nobody (uvicorn's own default trusts
      127.0.0.1, so anything on the host could pose as any client and dodge the per-IP
      rate limits).
    - An idle keep-alive connection is closed after ``TALLY_KEEP_ALIVE_TIMEOUT_SECONDS``.
      Slow bodies are cut off by ``api.middleware.BodyLimit``; slow headers, which uvicorn
      has no timeout for, by the reverse proxy (``deploy/nginx.conf``).
    """
    trusted = [address.strip() for address in settings.trusted_proxies if address.strip()]
    return {
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted,
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
    }
