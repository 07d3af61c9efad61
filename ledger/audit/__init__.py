"""The auditor behind ``tally verify``: it trusts only the chain and content checked against CIDs.

It depends on ``ledger.core``, ``ledger.content``, ``ledger.election`` and a read-only
chain reader (``ChainReader``), never on the server's database, intake, review, people or
sealing (an import-linter contract in pyproject.toml, and a test, hold it to that).

- ``auditor``: ``Auditor`` (``verify_record``, ``verify_unit``, ``verify_batch``, ``verify_all``)
- ``sources``: where content is read (``open_source``: CAR file, IPFS node, block store, gateway)
- ``checks``: the record checks; ``photos``: the photo check; ``worker``: the worker processes
- ``report``: ``AuditReport`` and ``Mismatch``
"""

from ledger.audit.auditor import Auditor, ChainReader
from ledger.audit.report import AuditReport, Mismatch
from ledger.audit.sources import ContentSource, GatewaySource, StoreSource, open_source

__all__ = [
    "AuditReport",
    "Auditor",
    "ChainReader",
    "ContentSource",
    "GatewaySource",
    "Mismatch",
    "StoreSource",
    "open_source",
]
