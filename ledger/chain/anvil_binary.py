"""Where the anvil executable is: ``@foundry-rs/anvil-<platform>`` from node_modules
(pinned in package.json), else ``anvil`` on PATH."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

from ledger.errors import ChainError

__all__ = ["REPO_ROOT", "find_anvil_binary"]

REPO_ROOT = Path(__file__).resolve().parents[2]
_PLATFORM_PACKAGES = {
    ("Linux", "x86_64"): "anvil-linux-amd64",
    ("Linux", "aarch64"): "anvil-linux-arm64",
    ("Darwin", "x86_64"): "anvil-darwin-amd64",
    ("Darwin", "arm64"): "anvil-darwin-arm64",
    ("Windows", "AMD64"): "anvil-win32-amd64",
}


def find_anvil_binary(node_modules: Path = REPO_ROOT / "node_modules") -> Path:
    """The anvil executable from ``@foundry-rs/anvil-<platform>``, else ``anvil`` on PATH."""
    package = _PLATFORM_PACKAGES.get((platform.system(), platform.machine()))
    if package is not None:
        name = "anvil.exe" if platform.system() == "Windows" else "anvil"
        candidate = node_modules / "@foundry-rs" / package / "bin" / name
        if candidate.is_file():
            return candidate
    on_path = shutil.which("anvil")
    if on_path is not None:
        return Path(on_path)
    raise ChainError(
        f"anvil was not found in {node_modules}/@foundry-rs/{package or '<platform package>'}/bin "
        "nor on PATH; run `npm ci` in the repository root (scripts/setup.sh does)"
    )
