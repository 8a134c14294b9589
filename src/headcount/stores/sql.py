"""SQL adapter of the ControlStore port (SQLite by default, Postgres by URL), and the one
function that opens a control store from a URL.

SQLAlchemy Core only: the port is small and its rows map one-to-one onto the dataclasses in
``stores/control.py``. The schema is migrated with Alembic every time a store is opened
(``migrations/``): a no-op when it is current, so every process may start first.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, and_, create_engine, event, insert, select, update
from sqlalchemy.engine import URL, Connection, Row, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from headcount.auth.identifiers import new_id
from headcount.errors import StoreUnavailable
from headcount.metrics import Histogram
from headcount.stores.control import AccessToken, ControlStore, Environment, SigningKey
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.sql_schema import access_tokens, environments, signing_keys

__all__ = ["SqlControlStore", "check_database_url", "migrate", "open_control_store", "sql_url"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def sql_url(url: str) -> URL:
    """The SQLAlchemy URL for a database setting: ``postgresql://`` (and ``postgres://``) use
    the psycopg 3 driver, the one Headcount installs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def check_database_url(url: str) -> None:
    """Refuse a control-store URL no adapter takes, with what to write instead (ValueError);
    nothing is opened."""
    if url.startswith("memory://"):
        return
    try:
        parsed = sql_url(url)
        backend = parsed.get_backend_name()
        shown = parsed.render_as_string(hide_password=True)
    except Exception:  # SQLAlchemy's ArgumentError for text that is no URL at all
        backend, shown = "", url.partition("://")[0] + "://..." if "://" in url else url[:40]
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(
            f"unsupported database URL {shown!r}: use sqlite:///path, postgresql://... or memory://"
        )


def open_control_store(url: str) -> ControlStore:
    """``memory://`` (nothing kept), ``sqlite:///path`` or ``postgresql://...``; migrated."""
    if url.startswith("memory://"):
        return MemoryControlStore()
    parsed = sql_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed)
    elif parsed.get_backend_name() == "postgresql":
        engine = create_engine(parsed, pool_pre_ping=True)
    else:
        raise ValueError(
            f"unsupported database URL {url!r}: use sqlite:///path, postgresql://... or memory://"
        )
    try:
        with _translated_errors():
            migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return SqlControlStore(engine)


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        assert isinstance(dbapi_connection, sqlite3.Connection)
        cursor = dbapi_connection.cursor()
        # WAL lets `headcount signing-keys ...` write while a server reads; the busy timeout
        # makes a writer wait for another instead of failing at once.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic, run in-process, no ``alembic.ini``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextlib.contextmanager
def _translated_errors() -> Iterator[None]:
    """A database that cannot be reached (or is locked) is the caller's 503, not a crash."""
    try:
        yield
    except OperationalError as exc:
        raise StoreUnavailable(
            "The control store database is unavailable; try again shortly."
        ) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(
                "The control store database connection was lost; try again shortly."
            ) from exc
        raise


# Values in one ``IN (...)``: under SQLite's oldest limit of bound parameters (999).
_IN_CHUNK: Final = 999


def _storable(*values: str) -> bool:
    """Whether every string can be sent as text: Postgres refuses NUL bytes with an error, but a
    value holding one can never have been stored, so a lookup of it simply finds nothing."""
    return not any("\x00" in value for value in values)


def _environment(row: Row[Any]) -> Environment:
    return Environment(id=row.id, name=row.name, env_key=row.env_key, created_at=row.created_at)


def _access_token(row: Row[Any]) -> AccessToken:
    return AccessToken(
        id=row.id,
        environment_id=row.environment_id,
        permissions=frozenset(row.permissions.split()),
        created_at=row.created_at,
        revoked=bool(row.revoked),
    )


def _signing_key(row: Row[Any]) -> SigningKey:
    return SigningKey(
        id=row.id,
        environment_id=row.environment_id,
        public_key_pem=row.public_key_pem.encode("ascii"),
        created_at=row.created_at,
        deleted_at=row.deleted_at,
    )


class SqlControlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.latency = Histogram()  # each query or transaction, timed (GET /metrics)

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._timed(), _translated_errors(), self.engine.connect() as connection:
            yield connection

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._timed(), _translated_errors(), self.engine.begin() as connection:
            yield connection

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.latency.since(started)

    # -- environments ----------------------------------------------------------------------

    def create_environment(self, name: str, env_key: str, now: int) -> Environment:
        environment = Environment(id=new_id(), name=name, env_key=env_key, created_at=now)
        try:
            with self._write() as connection:
                connection.execute(
                    insert(environments).values(
                        id=environment.id, name=name, env_key=env_key, created_at=now
                    )
                )
        except IntegrityError as exc:
            raise ValueError(f"env_key {env_key!r} is taken") from exc
        return environment

    def list_environments(self) -> list[Environment]:
        query = select(environments).order_by(environments.c.created_at, environments.c.id)
        with self._read() as connection:
            return [_environment(row) for row in connection.execute(query)]

    def get_environment(self, environment_id: str) -> Environment | None:
        if not _storable(environment_id):
            return None
        query = select(environments).where(environments.c.id == environment_id)
        with self._read() as connection:
            row = connection.execute(query).first()
        return None if row is None else _environment(row)

    def environments_for_env_keys(self, env_keys: Collection[str]) -> dict[str, Environment]:
        wanted = sorted({key for key in env_keys if _storable(key)})
        found: dict[str, Environment] = {}
        if not wanted:
            return found
        with self._read() as connection:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                query = select(environments).where(environments.c.env_key.in_(chunk))
                for row in connection.execute(query):
                    found[row.env_key] = _environment(row)
        return found

    # -- access tokens ---------------------------------------------------------------------

    def add_access_token(self, token: AccessToken, secret_hash: str) -> None:
        with self._write() as connection:
            connection.execute(
                insert(access_tokens).values(
                    id=token.id,
                    environment_id=token.environment_id,
                    permissions=" ".join(sorted(token.permissions)),
                    secret_hash=secret_hash,
                    created_at=token.created_at,
                    revoked=token.revoked,
                )
            )

    def access_token_with_hash(self, token_id: str) -> tuple[AccessToken, str] | None:
        if not _storable(token_id):
            return None
        query = select(access_tokens).where(access_tokens.c.id == token_id)
        with self._read() as connection:
            row = connection.execute(query).first()
        return None if row is None else (_access_token(row), row.secret_hash)

    def list_access_tokens(self, environment_id: str | None = None) -> list[AccessToken]:
        if environment_id is not None and not _storable(environment_id):
            return []
        query = select(access_tokens).order_by(access_tokens.c.created_at, access_tokens.c.id)
        if environment_id is not None:
            query = query.where(access_tokens.c.environment_id == environment_id)
        with self._read() as connection:
            return [_access_token(row) for row in connection.execute(query)]

    def revoke_access_token(self, token_id: str) -> bool:
        if not _storable(token_id):
            return False
        statement = (
            update(access_tokens)
            .where(and_(access_tokens.c.id == token_id, access_tokens.c.revoked.is_(False)))
            .values(revoked=True)
        )
        with self._write() as connection:
            return connection.execute(statement).rowcount == 1

    # -- signing keys ----------------------------------------------------------------------

    def add_signing_key(self, key: SigningKey) -> None:
        with self._write() as connection:
            connection.execute(
                insert(signing_keys).values(
                    id=key.id,
                    environment_id=key.environment_id,
                    public_key_pem=key.public_key_pem.decode("ascii"),
                    created_at=key.created_at,
                    deleted_at=key.deleted_at,
                )
            )

    def get_signing_key(self, key_id: str) -> SigningKey | None:
        if not _storable(key_id):
            return None
        query = select(signing_keys).where(signing_keys.c.id == key_id)
        with self._read() as connection:
            row = connection.execute(query).first()
        return None if row is None else _signing_key(row)

    def list_signing_keys(self, environment_id: str, limit: int, offset: int) -> list[SigningKey]:
        if not _storable(environment_id):
            return []
        query = (
            select(signing_keys)
            .where(
                and_(
                    signing_keys.c.environment_id == environment_id,
                    signing_keys.c.deleted_at.is_(None),
                )
            )
            .order_by(signing_keys.c.created_at, signing_keys.c.id)
            .limit(limit)
            .offset(offset)
        )
        with self._read() as connection:
            return [_signing_key(row) for row in connection.execute(query)]

    def delete_signing_key(self, key_id: str, now: int) -> bool:
        if not _storable(key_id):
            return False
        statement = (
            update(signing_keys)
            .where(and_(signing_keys.c.id == key_id, signing_keys.c.deleted_at.is_(None)))
            .values(deleted_at=now)
        )
        with self._write() as connection:
            return connection.execute(statement).rowcount == 1

    def signing_keys_deleted_since(self, since: int) -> list[str]:
        query = (
            select(signing_keys.c.id)
            .where(signing_keys.c.deleted_at >= since)
            .order_by(signing_keys.c.deleted_at, signing_keys.c.id)
        )
        with self._read() as connection:
            return [row.id for row in connection.execute(query)]

    def close(self) -> None:
        self.engine.dispose()
