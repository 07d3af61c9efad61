"""Helpers behind ``tally`` commands that touch content (glue; the rules live in ledger.core)."""

from __future__ import annotations

import os
from pathlib import Path

from ledger.core.cid import CID
from ledger.core.unixfs import CHUNK_SIZE, FileDagBuilder

__all__ = ["cid_of_path"]


def cid_of_path(path: str | os.PathLike[str]) -> CID:
    """The CID ``ipfs add -n -Q --cid-version=1 PATH`` prints for a regular file, read in 256 KiB pieces.

    Nothing is stored. Raises ``IsADirectoryError`` for a directory (``ipfs add`` would need
    ``-r`` and would wrap it in a UnixFS directory, which Tally never does) and the usual
    ``OSError`` subclasses for unreadable paths.
    """
    source = Path(path)
    if source.is_dir():
        raise IsADirectoryError(f"{source} is a directory; tally cid takes files")
    builder = FileDagBuilder(keep_leaves=False)
    with open(source, "rb") as handle:
        while piece := handle.read(CHUNK_SIZE):
            builder.write(piece)
    builder.finish()
    return builder.root
