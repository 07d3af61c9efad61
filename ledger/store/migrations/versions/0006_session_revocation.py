"""session revocation: each volunteer's session generation, and when it last changed

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ledger.store.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("volunteers") as batch_op:
        batch_op.add_column(sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("sessions_ended_at", ledger.store.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("volunteers") as batch_op:
        batch_op.drop_column("sessions_ended_at")
        batch_op.drop_column("session_generation")
