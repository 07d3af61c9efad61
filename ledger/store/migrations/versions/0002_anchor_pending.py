"""keep the signed anchor transaction before sending it

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ledger.store.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch_op:
        batch_op.add_column(sa.Column("anchor_pending", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("anchor_sent_at", ledger.store.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch_op:
        batch_op.drop_column("anchor_sent_at")
        batch_op.drop_column("anchor_pending")
