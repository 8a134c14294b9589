"""The control store's tables, as SQLAlchemy Core objects (the queries in ``sql.py`` use them).

The migrations in ``migrations/versions/`` create these tables; they are written out there
separately on purpose, because a migration must keep describing the schema of its own version
after this module moves on. ``tests/stores/test_control_contract.py`` checks the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["access_tokens", "environments", "metadata", "signing_keys"]

metadata = MetaData()

environments = Table(
    "environments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("env_key", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("environment_id", String(64), ForeignKey("environments.id"), nullable=False),
    # Space-separated, sorted: the permissions are a small fixed vocabulary (control.PERMISSIONS).
    Column("permissions", Text, nullable=False),
    # SHA-256 hex of the secret; the secret itself is never stored.
    Column("secret_hash", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False),
    Index("ix_access_tokens_environment", "environment_id", "created_at"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("environment_id", String(64), ForeignKey("environments.id"), nullable=False),
    # SubjectPublicKeyInfo PEM: the public half only; the private key never reaches the store.
    Column("public_key_pem", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger, nullable=True),
    Index("ix_signing_keys_listing", "environment_id", "deleted_at", "created_at", "id"),
    Index("ix_signing_keys_deleted_at", "deleted_at"),
)
