"""API access: principals with API keys, registered volunteers, sign-in challenges

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ledger.store.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_hint", sa.String(length=16), nullable=False),
        sa.Column("created_at", ledger.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("revoked_at", ledger.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["principals.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("principals") as batch_op:
        batch_op.create_index(batch_op.f("ix_principals_role"), ["role"], unique=False)

    op.create_table(
        "volunteers",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("registered_at", ledger.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("registered_by", sa.Integer(), nullable=True),
        sa.Column("revoked_at", ledger.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["registered_by"], ["principals.id"]),
        sa.PrimaryKeyConstraint("address"),
    )

    op.create_table(
        "auth_challenges",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("issued_at", ledger.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", ledger.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", ledger.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("nonce"),
    )
    with op.batch_alter_table("auth_challenges") as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_challenges_address"), ["address"], unique=False)
        batch_op.create_index(batch_op.f("ix_auth_challenges_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("auth_challenges") as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_challenges_expires_at"))
        batch_op.drop_index(batch_op.f("ix_auth_challenges_address"))
    op.drop_table("auth_challenges")
    op.drop_table("volunteers")
    with op.batch_alter_table("principals") as batch_op:
        batch_op.drop_index(batch_op.f("ix_principals_role"))
    op.drop_table("principals")
