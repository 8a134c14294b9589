"""One contract for every ControlStore adapter: memory, SQLite (a temporary file) and Postgres
(a schema of its own, dropped afterwards). Plus what only the SQL adapters promise: migrations
that match the declared schema, persistence across opens, URLs, and unavailability as a 503."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from headcount.errors import StoreUnavailable
from headcount.stores.control import (
    SYSTEM_READ,
    SYSTEM_WRITE,
    AccessToken,
    ControlStore,
    SigningKey,
)
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.sql import SqlControlStore, open_control_store, sql_url
from headcount.stores.sql_schema import metadata
from tests.postgres_schema import postgres_role, postgres_schema_url

PEM = b"-----BEGIN PUBLIC KEY-----\nnot-a-real-key\n-----END PUBLIC KEY-----\n"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'control.db'}"
    else:
        with postgres_schema_url() as url:
            yield url


@pytest.fixture
def store(store_url: str) -> Iterator[ControlStore]:
    opened = open_control_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'control.db'}"
    else:
        with postgres_schema_url() as url:
            yield url


def _token(environment_id: str, token_id: str, created_at: int, *perms: str) -> AccessToken:
    return AccessToken(
        id=token_id,
        environment_id=environment_id,
        permissions=frozenset(perms),
        created_at=created_at,
    )


def _key(environment_id: str, key_id: str, created_at: int) -> SigningKey:
    return SigningKey(
        id=key_id, environment_id=environment_id, public_key_pem=PEM, created_at=created_at
    )


# -- environments ----------------------------------------------------------------------------


def test_memory_url_opens_the_memory_adapter() -> None:
    assert isinstance(open_control_store("memory://"), MemoryControlStore)


def test_created_environment_is_found_by_id_and_env_key(store: ControlStore) -> None:
    created = store.create_environment("prod", "abc123", 100)
    assert (created.name, created.env_key, created.created_at) == ("prod", "abc123", 100)
    assert created.id
    assert store.get_environment(created.id) == created
    assert store.environments_for_env_keys(["abc123"]) == {"abc123": created}
    assert store.get_environment("nope") is None
    assert store.environments_for_env_keys(["nope"]) == {}
    assert store.environments_for_env_keys([]) == {}


def test_many_env_keys_are_looked_up_at_once(store: ControlStore) -> None:
    made = {f"key{i}": store.create_environment(f"e{i}", f"key{i}", i) for i in range(3)}
    # More keys than one IN (...) holds, known ones among them, one given twice.
    asked = [f"unknown{i}" for i in range(2500)] + ["key0", "key2", "key2", "bad\x00key"]
    assert store.environments_for_env_keys(asked) == {"key0": made["key0"], "key2": made["key2"]}


def test_env_key_is_unique(store: ControlStore) -> None:
    store.create_environment("one", "samekey", 1)
    with pytest.raises(ValueError, match="taken"):
        store.create_environment("two", "samekey", 2)
    assert [e.name for e in store.list_environments()] == ["one"]


def test_environments_are_listed_oldest_first_with_distinct_ids(store: ControlStore) -> None:
    late = store.create_environment("late", "k2", 20)
    early = store.create_environment("early", "k1", 10)
    tie = store.create_environment("tie", "k3", 20)
    listed = store.list_environments()
    assert listed[0] == early
    assert {e.id for e in listed[1:]} == {late.id, tie.id}
    # Same created_at: ordered by id, so the order is stable from call to call.
    assert [e.id for e in listed[1:]] == sorted([late.id, tie.id])
    assert len({early.id, late.id, tie.id}) == 3


# -- access tokens ---------------------------------------------------------------------------


def test_access_token_comes_back_with_its_hash(store: ControlStore) -> None:
    env = store.create_environment("e", "k", 1)
    token = _token(env.id, "tok1", 5, SYSTEM_READ, SYSTEM_WRITE)
    store.add_access_token(token, "hash-of-secret")
    assert store.access_token_with_hash("tok1") == (token, "hash-of-secret")
    assert store.access_token_with_hash("tok2") is None


def test_access_tokens_are_listed_per_environment_oldest_first(store: ControlStore) -> None:
    a = store.create_environment("a", "ka", 1)
    b = store.create_environment("b", "kb", 1)
    store.add_access_token(_token(a.id, "t2", 20, SYSTEM_READ), "h2")
    store.add_access_token(_token(a.id, "t1", 10, SYSTEM_WRITE), "h1")
    store.add_access_token(_token(b.id, "t3", 5, SYSTEM_READ), "h3")
    assert [t.id for t in store.list_access_tokens(a.id)] == ["t1", "t2"]
    assert [t.id for t in store.list_access_tokens(b.id)] == ["t3"]
    assert [t.id for t in store.list_access_tokens()] == ["t3", "t1", "t2"]
    assert store.list_access_tokens(a.id)[0].permissions == frozenset({SYSTEM_WRITE})


def test_revoking_an_access_token_happens_once(store: ControlStore) -> None:
    env = store.create_environment("e", "k", 1)
    token = _token(env.id, "tok", 1, SYSTEM_READ)
    store.add_access_token(token, "h")
    assert store.revoke_access_token("tok") is True
    assert store.access_token_with_hash("tok") == (dataclasses.replace(token, revoked=True), "h")
    assert store.revoke_access_token("tok") is False
    assert store.revoke_access_token("unknown") is False


# -- signing keys ----------------------------------------------------------------------------


def test_signing_key_round_trips_with_its_public_key(store: ControlStore) -> None:
    env = store.create_environment("e", "k", 1)
    key = _key(env.id, "key1", 7)
    store.add_signing_key(key)
    assert store.get_signing_key("key1") == key
    assert store.get_signing_key("key2") is None


def test_signing_keys_are_listed_per_environment_in_pages(store: ControlStore) -> None:
    a = store.create_environment("a", "ka", 1)
    b = store.create_environment("b", "kb", 1)
    for i, created_at in enumerate([30, 10, 20, 20, 40]):
        store.add_signing_key(_key(a.id, f"a{i}", created_at))
    store.add_signing_key(_key(b.id, "b0", 15))
    everything = store.list_signing_keys(a.id, 100, 0)
    # Oldest first; the two keys created at 20 in id order.
    assert [k.id for k in everything] == ["a1", "a2", "a3", "a0", "a4"]
    assert [k.id for k in store.list_signing_keys(a.id, 2, 0)] == ["a1", "a2"]
    assert [k.id for k in store.list_signing_keys(a.id, 2, 2)] == ["a3", "a0"]
    assert [k.id for k in store.list_signing_keys(a.id, 2, 4)] == ["a4"]
    assert store.list_signing_keys(a.id, 2, 6) == []
    assert [k.id for k in store.list_signing_keys(b.id, 100, 0)] == ["b0"]
    assert store.list_signing_keys("no-such-environment", 100, 0) == []


def test_deleted_signing_key_is_kept_but_not_listed(store: ControlStore) -> None:
    env = store.create_environment("e", "k", 1)
    store.add_signing_key(_key(env.id, "gone", 1))
    store.add_signing_key(_key(env.id, "kept", 2))
    assert store.delete_signing_key("gone", 50) is True
    assert store.get_signing_key("gone") == dataclasses.replace(
        _key(env.id, "gone", 1), deleted_at=50
    )
    assert [k.id for k in store.list_signing_keys(env.id, 10, 0)] == ["kept"]
    assert store.delete_signing_key("gone", 60) is False
    assert store.get_signing_key("gone") is not None
    assert store.get_signing_key("gone").deleted_at == 50  # type: ignore[union-attr]
    assert store.delete_signing_key("unknown", 60) is False


def test_deletions_are_reported_since_a_time(store: ControlStore) -> None:
    env = store.create_environment("e", "k", 1)
    for key_id in ("k1", "k2", "k3"):
        store.add_signing_key(_key(env.id, key_id, 1))
    store.delete_signing_key("k1", 100)
    store.delete_signing_key("k2", 200)
    assert sorted(store.signing_keys_deleted_since(0)) == ["k1", "k2"]
    assert store.signing_keys_deleted_since(200) == ["k2"]
    assert store.signing_keys_deleted_since(201) == []


# -- SQL only --------------------------------------------------------------------------------


def test_everything_survives_closing_and_reopening(sql_store_url: str) -> None:
    first = open_control_store(sql_store_url)
    env = first.create_environment("e", "persist", 1)
    first.add_access_token(_token(env.id, "tok", 2, SYSTEM_READ), "h")
    first.add_signing_key(_key(env.id, "key", 3))
    first.close()
    second = open_control_store(sql_store_url)
    try:
        assert second.environments_for_env_keys({"persist"}) == {"persist": env}
        assert second.access_token_with_hash("tok") == (_token(env.id, "tok", 2, SYSTEM_READ), "h")
        assert second.get_signing_key("key") == _key(env.id, "key", 3)
    finally:
        second.close()


def test_migrations_build_exactly_the_declared_schema(sql_store_url: str) -> None:
    store = open_control_store(sql_store_url)
    assert isinstance(store, SqlControlStore)
    try:
        with store.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert differences == []
        assert version == "0001"
    finally:
        store.close()


def test_sqlite_file_parent_directory_is_created(tmp_path: Path) -> None:
    database = tmp_path / "not" / "yet" / "there.db"
    store = open_control_store(f"sqlite:///{database}")
    store.close()
    assert database.is_file()


def test_postgres_urls_use_the_psycopg_3_driver() -> None:
    assert sql_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert sql_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert sql_url("sqlite:///x.db").drivername == "sqlite"


def test_a_plain_postgresql_url_opens_a_store() -> None:
    with postgres_schema_url() as url:
        assert url.startswith("postgresql://")
        store = open_control_store(url)
        try:
            assert store.list_environments() == []
        finally:
            store.close()


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        open_control_store("mysql://localhost/db")


def test_unreachable_database_is_store_unavailable() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(StoreUnavailable):
        open_control_store(f"postgresql://{postgres_role()}@127.0.0.1:1/test?connect_timeout=2")


def test_lookups_of_ids_with_a_nul_byte_find_nothing(store: ControlStore) -> None:
    # They arrive from URLs and Basic credentials; Postgres would refuse them with an error
    # (a 500) if they reached it, yet no stored id can contain one.
    env = store.create_environment("e", "k", 1)
    bad = "a\x00b"
    assert store.get_environment(bad) is None
    assert store.environments_for_env_keys([bad]) == {}
    assert store.access_token_with_hash(bad) is None
    assert store.list_access_tokens(bad) == []
    assert store.revoke_access_token(bad) is False
    assert store.get_signing_key(bad) is None
    assert store.list_signing_keys(bad, 10, 0) == []
    assert store.delete_signing_key(bad, 1) is False
    assert store.get_environment(env.id) == env
