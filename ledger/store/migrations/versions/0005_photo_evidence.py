"""photo evidence: pixel size and perceptual hash of photos, their hash bands, unit names

Revision ID: 0005
Revises: 0004

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photos") as batch:
        batch.add_column(sa.Column("width", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("height", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("perceptual_hash", sa.String(length=16), nullable=True))
    op.create_table(
        "photo_hash_bands",
        sa.Column("band", sa.SmallInteger(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("photo_cid", sa.String(length=100), nullable=False),
        sa.Column("perceptual_hash", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("band", "value", "photo_cid"),
    )
    with op.batch_alter_table("unit_locations") as batch:
        batch.add_column(sa.Column("name", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("unit_locations") as batch:
        batch.drop_column("name")
    op.drop_table("photo_hash_bands")
    with op.batch_alter_table("photos") as batch:
        batch.drop_column("perceptual_hash")
        batch.drop_column("height")
        batch.drop_column("width")
