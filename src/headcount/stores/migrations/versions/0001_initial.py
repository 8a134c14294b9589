"""Environments, access tokens and signing keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "environments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("env_key", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "access_tokens",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "environment_id", sa.String(64), sa.ForeignKey("environments.id"), nullable=False
        ),
        sa.Column("permissions", sa.Text, nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )
    op.create_index(
        "ix_access_tokens_environment", "access_tokens", ["environment_id", "created_at"]
    )
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "environment_id", sa.String(64), sa.ForeignKey("environments.id"), nullable=False
        ),
        sa.Column("public_key_pem", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("deleted_at", sa.BigInteger, nullable=True),
    )
    op.create_index(
        "ix_signing_keys_listing",
        "signing_keys",
        ["environment_id", "deleted_at", "created_at", "id"],
    )
    op.create_index("ix_signing_keys_deleted_at", "signing_keys", ["deleted_at"])


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_table("access_tokens")
    op.drop_table("environments")
