"""invitations: single-use, expiring sign-in codes for custodial volunteers

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ledger.store.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("issued_by", sa.Integer(), sa.ForeignKey("principals.id"), nullable=True),
        sa.Column("issued_at", ledger.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", ledger.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", ledger.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("session_generation", sa.Integer(), nullable=False),
    )
    op.create_index("ix_invitations_address", "invitations", ["address"])
    op.create_index("ix_invitations_expires_at", "invitations", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_invitations_expires_at", "invitations")
    op.drop_index("ix_invitations_address", "invitations")
    op.drop_table("invitations")
