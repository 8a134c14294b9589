"""A throwaway Postgres schema per test: the real server on 127.0.0.1:5432 (trust auth,
database ``test``), as whichever of the roles ``postgres`` / ``root`` exists here.

The URL it yields pins ``search_path`` to the new schema (libpq's ``options``), so Headcount's
migrations and queries land there and nowhere else; the schema is dropped afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections.abc import Iterator
from urllib.parse import quote

import psycopg

__all__ = ["POSTGRES_ROLES", "postgres_role", "postgres_schema_url"]

POSTGRES_ROLES = ("postgres", "root")
_SERVER = "host=127.0.0.1 port=5432 dbname=test connect_timeout=5"


@functools.cache
def postgres_role() -> str:
    failures = []
    for role in POSTGRES_ROLES:
        try:
            with psycopg.connect(f"{_SERVER} user={role}"):
                return role
        except psycopg.OperationalError as exc:
            failures.append(f"{role}: {exc}")
    raise RuntimeError(
        "Postgres must run on 127.0.0.1:5432 with database `test` (trust auth); "
        + "; ".join(failures)
    )


@contextlib.contextmanager
def postgres_schema_url() -> Iterator[str]:
    role = postgres_role()
    schema = "hc_test_" + secrets.token_hex(6)
    with psycopg.connect(f"{_SERVER} user={role}", autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            options = quote(f"-csearch_path={schema}")
            yield f"postgresql://{role}@127.0.0.1:5432/test?options={options}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
