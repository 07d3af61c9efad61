"""authority entries: an entry's subject may be an address or a key's SHA-256, not only a unit

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch_op:
        batch_op.alter_column("polling_unit", existing_type=sa.String(32), type_=sa.String(80), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch_op:
        batch_op.alter_column("polling_unit", existing_type=sa.String(80), type_=sa.String(32), existing_nullable=False)
