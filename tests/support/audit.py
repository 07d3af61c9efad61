"""Test helpers and fixtures, moved out of the test module that first needed them."""

from __future__ import annotations

import hashlib

import pytest

from ledger.audit import Auditor, StoreSource
from ledger.chain.anvil import AnvilNode
from ledger.core.cid import CID, DAG_PB
from ledger.core.unixfs import iter_file_blocks
from ledger.election import Election
from ledger.sealing.anchoring import AnchorWorker
from ledger.sealing.batches import Batcher
from ledger.settings import Settings
from tests.support.chain import open_client
from tests.support.factories import STAND_IN_EXIF
from tests.support.review import CONSTITUENCY, decide, photo, tally


@pytest.fixture
def night(review_service, settings: Settings, anvil: AnvilNode, election: Election):  # type: ignore[no-untyped-def]
    """A small certified night in one constituency, sealed and anchored."""
    service = review_service
    units = [u.id for u in election.polling_units(CONSTITUENCY)]
    for unit in units[:3]:
        service.submit_report(tally(service, "org-a", unit))
        service.submit_report(tally(service, "org-b", unit))
    for unit in units[:3]:
        decide(service, "war-room", "certify", unit, record=service.replay.unit(unit).accepted)
    Batcher(service.ledger).seal_due(force=True)
    client = open_client(settings)
    AnchorWorker(database=service.database, content=service.ledger.content, client=client).drain()
    return service, client


def auditor(service, client, content=None) -> Auditor:  # type: ignore[no-untyped-def]
    return Auditor(chain=client, content=content or StoreSource(service.ledger.content, "blocks"), election=service.election)


@pytest.fixture
def review_service(service):  # type: ignore[no-untyped-def]
    """The review service of ``tests.support.review``, under the name the audit fixtures use."""
    return service


LARGE_PHOTO = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(19200))
"""A photo larger than a chunk (614,400 bytes that never repeat): its file DAG is three
distinct raw leaves under one dag-pb node."""


def file_photo(service, data: bytes) -> CID:  # type: ignore[no-untyped-def]
    """``data`` stored as a whole UnixFS file (as the intake stores photos) and indexed as a photo."""
    from ledger.intake.photos import PhotoInfo

    cid = service.ledger.content.add_file(data)
    exif = dict(STAND_IN_EXIF)
    info = PhotoInfo(cid=cid, size=len(data), media_type="image/jpeg", taken_at=str(exif["taken_at"]), gps=None, exif=exif)
    service.ledger.record_photos([(info, None)])
    return cid


@pytest.fixture
def photo_night(night):  # type: ignore[no-untyped-def]
    """``night`` and one more anchored tally whose tally-board photo is ``LARGE_PHOTO``:
    (service, client, that record's CID, the photo's CID, the photo's blocks, root last)."""
    service, client = night
    board = file_photo(service, LARGE_PHOTO)
    unit = [u.id for u in service.election.polling_units(CONSTITUENCY)][3]
    accepted = service.submit_report(tally(service, "org-a", unit, photos=(str(board), photo(service, "large-form"))))
    Batcher(service.ledger).seal_due(force=True)
    AnchorWorker(database=service.database, content=service.ledger.content, client=client).drain()
    blocks = [cid for cid, _ in iter_file_blocks(LARGE_PHOTO)]
    assert blocks[-1] == board and len(set(blocks)) == 4 and board.codec == DAG_PB
    return service, client, str(accepted.receipt["record_cid"]), board, blocks


def flip_a_byte(service, cid: CID) -> None:  # type: ignore[no-untyped-def]
    """Alter the stored block of ``cid`` on disk, as a tamperer with the disk would."""
    path = service.ledger.content.path_of(cid)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
