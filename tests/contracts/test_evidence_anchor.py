"""EvidenceAnchor: roles, ordering, immutability, events and Merkle verification."""

from __future__ import annotations

import ape
import pytest
from eth_utils import keccak

from tests.contracts.merkle import leaf_hash, root_and_proofs

MANIFEST_CID = "bafyreigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
ROOT = keccak(b"batch one")
ANCHORER_ROLE = keccak(b"ANCHORER_ROLE")
DEFAULT_ADMIN_ROLE = b"\x00" * 32


def test_starts_empty_at_batch_one(evidence_anchor):
    assert evidence_anchor.FIRST_BATCH_ID() == 1
    assert evidence_anchor.nextBatchId() == 1
    assert evidence_anchor.VERSION() == "tally-evidence-anchor-v1"


def test_constructor_grants_the_two_roles(evidence_anchor, admin, anchorer, volunteer):
    assert evidence_anchor.ANCHORER_ROLE() == ANCHORER_ROLE
    assert evidence_anchor.hasRole(DEFAULT_ADMIN_ROLE, admin)
    assert evidence_anchor.hasRole(ANCHORER_ROLE, anchorer)
    assert not evidence_anchor.hasRole(ANCHORER_ROLE, admin)
    assert not evidence_anchor.hasRole(ANCHORER_ROLE, volunteer)


def test_constructor_refuses_zero_addresses(project, admin, anchorer):
    zero = "0x0000000000000000000000000000000000000000"
    with ape.reverts(project.EvidenceAnchor.ZeroAccount, role=DEFAULT_ADMIN_ROLE):
        admin.deploy(project.EvidenceAnchor, zero, anchorer)
    with ape.reverts(project.EvidenceAnchor.ZeroAccount, role=ANCHORER_ROLE):
        admin.deploy(project.EvidenceAnchor, admin, zero)


def test_anchor_stores_the_root_and_emits_the_event(evidence_anchor, anchorer):
    receipt = evidence_anchor.anchor(1, ROOT, 1000, MANIFEST_CID, sender=anchorer)

    assert evidence_anchor.batch(1) == ROOT
    assert evidence_anchor.nextBatchId() == 2
    assert receipt.events == [evidence_anchor.BatchAnchored(batchId=1, root=ROOT, recordCount=1000, manifestCid=MANIFEST_CID)]


def test_the_event_is_found_by_batch_id(evidence_anchor, anchorer):
    for batch_id in (1, 2, 3):
        evidence_anchor.anchor(batch_id, keccak(bytes([batch_id])), batch_id * 10, MANIFEST_CID, sender=anchorer)
    head = ape.chain.blocks.height
    logs = list(evidence_anchor.BatchAnchored.range(0, head + 1, search_topics={"batchId": 2}))  # topic 1
    assert [log.recordCount for log in logs] == [20]


def test_batches_follow_one_another(evidence_anchor, anchorer):
    for batch_id in (1, 2, 3):
        evidence_anchor.anchor(batch_id, keccak(bytes([batch_id])), batch_id, MANIFEST_CID, sender=anchorer)
    assert evidence_anchor.nextBatchId() == 4
    assert [evidence_anchor.batch(batch_id) for batch_id in (1, 2, 3)] == [keccak(bytes([i])) for i in (1, 2, 3)]


def test_ids_cannot_be_skipped(evidence_anchor, anchorer):
    with ape.reverts(evidence_anchor.BatchOutOfOrder, expected=1, given=2):
        evidence_anchor.anchor(2, ROOT, 1, MANIFEST_CID, sender=anchorer)
    with ape.reverts(evidence_anchor.BatchOutOfOrder, expected=1, given=0):
        evidence_anchor.anchor(0, ROOT, 1, MANIFEST_CID, sender=anchorer)


def test_a_batch_is_anchored_once_and_never_changes(evidence_anchor, anchorer):
    evidence_anchor.anchor(1, ROOT, 10, MANIFEST_CID, sender=anchorer)
    with ape.reverts(evidence_anchor.BatchOutOfOrder, expected=2, given=1):
        evidence_anchor.anchor(1, keccak(b"another root"), 10, MANIFEST_CID, sender=anchorer)
    assert evidence_anchor.batch(1) == ROOT


@pytest.mark.parametrize(
    ("root", "record_count", "manifest_cid", "error_name"),
    [
        (b"\x00" * 32, 1, MANIFEST_CID, "ZeroRoot"),
        (ROOT, 0, MANIFEST_CID, "EmptyBatch"),
        (ROOT, 1, "", "EmptyManifestCid"),
    ],
)
def test_anchor_refuses_empty_values(evidence_anchor, anchorer, root, record_count, manifest_cid, error_name):
    with ape.reverts(getattr(evidence_anchor, error_name), batchId=1):
        evidence_anchor.anchor(1, root, record_count, manifest_cid, sender=anchorer)
    assert evidence_anchor.nextBatchId() == 1


def test_only_the_anchorer_role_may_anchor(evidence_anchor, admin, volunteer):
    for account in (admin, volunteer):
        with ape.reverts(evidence_anchor.AccessControlUnauthorizedAccount, account=account.address, neededRole=ANCHORER_ROLE):
            evidence_anchor.anchor(1, ROOT, 1, MANIFEST_CID, sender=account)


def test_admin_grants_and_revokes_the_anchorer_role(evidence_anchor, admin, anchorer, volunteer):
    evidence_anchor.grantRole(ANCHORER_ROLE, volunteer, sender=admin)
    evidence_anchor.anchor(1, ROOT, 1, MANIFEST_CID, sender=volunteer)

    evidence_anchor.revokeRole(ANCHORER_ROLE, anchorer, sender=admin)
    with ape.reverts(evidence_anchor.AccessControlUnauthorizedAccount, account=anchorer.address):
        evidence_anchor.anchor(2, ROOT, 1, MANIFEST_CID, sender=anchorer)


def test_only_the_admin_manages_roles(evidence_anchor, anchorer, volunteer):
    with ape.reverts(evidence_anchor.AccessControlUnauthorizedAccount, account=anchorer.address, neededRole=DEFAULT_ADMIN_ROLE):
        evidence_anchor.grantRole(ANCHORER_ROLE, volunteer, sender=anchorer)


def test_unknown_batches_are_refused_by_name(evidence_anchor, anchorer):
    evidence_anchor.anchor(1, ROOT, 1, MANIFEST_CID, sender=anchorer)
    for batch_id in (0, 2, 2**256 - 1):
        with ape.reverts(evidence_anchor.UnknownBatch, batchId=batch_id):
            evidence_anchor.batch(batch_id)
        with ape.reverts(evidence_anchor.UnknownBatch, batchId=batch_id):
            evidence_anchor.verify(batch_id, ROOT, [])


@pytest.mark.parametrize("leaf_count", [1, 2, 3, 8, 13])
def test_verify_accepts_every_leaf_and_refuses_tampering(evidence_anchor, anchorer, leaf_count):
    leaves = [leaf_hash(f"record {index}".encode()) for index in range(leaf_count)]
    root, proofs = root_and_proofs(leaves)
    evidence_anchor.anchor(1, root, leaf_count, MANIFEST_CID, sender=anchorer)

    for leaf, proof in zip(leaves, proofs, strict=True):
        assert evidence_anchor.verify(1, leaf, proof)
        assert not evidence_anchor.verify(1, keccak(leaf), proof)
        if proof:
            flipped = bytes([proof[0][0] ^ 1]) + proof[0][1:]
            assert not evidence_anchor.verify(1, leaf, [flipped, *proof[1:]])
            assert not evidence_anchor.verify(1, leaf, [*proof, proof[-1]])


def test_verify_checks_against_the_right_batch(evidence_anchor, anchorer):
    first_leaves = [leaf_hash(b"first %d" % index) for index in range(4)]
    second_leaves = [leaf_hash(b"second %d" % index) for index in range(4)]
    first_root, first_proofs = root_and_proofs(first_leaves)
    second_root, _ = root_and_proofs(second_leaves)
    evidence_anchor.anchor(1, first_root, 4, MANIFEST_CID, sender=anchorer)
    evidence_anchor.anchor(2, second_root, 4, MANIFEST_CID, sender=anchorer)

    assert evidence_anchor.verify(1, first_leaves[0], first_proofs[0])
    assert not evidence_anchor.verify(2, first_leaves[0], first_proofs[0])
