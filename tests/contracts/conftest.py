"""Fixtures for the contract tests, named after the roles people play.

Run with ``scripts/ape_test.sh`` (Ape + anvil); see that script for the environment.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def admin(accounts):
    """Holds DEFAULT_ADMIN_ROLE (in production: the election-observer multisig)."""
    return accounts[0]


@pytest.fixture(scope="session")
def anchorer(accounts):
    """Holds ANCHORER_ROLE (in production: the ledger's anchoring key)."""
    return accounts[1]


@pytest.fixture(scope="session")
def volunteer(accounts):
    """Anyone else: may read and verify, may not anchor."""
    return accounts[2]


@pytest.fixture
def evidence_anchor(project, admin, anchorer):
    return admin.deploy(project.EvidenceAnchor, admin, anchorer)
