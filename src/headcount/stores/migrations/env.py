"""Alembic's entry point, run by :func:`headcount.stores.sql.migrate` on a connection it
passes in ``config.attributes["connection"]`` (there is no ``alembic.ini``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

# Any constant: every Headcount process that starts against the same Postgres database takes
# this lock, so two servers starting at once cannot run the same migration twice.
_MIGRATION_LOCK = 0x4865_6164  # "Head"

connection = context.config.attributes["connection"]
assert isinstance(connection, Connection)
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    context.run_migrations()
