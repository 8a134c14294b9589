"""The verified-token cache on its own: bounded, expiry checked on every hit, keys dropped at
once. Pure: time is a parameter."""

from __future__ import annotations

from headcount.auth.token_cache import VerifiedToken, VerifiedTokenCache


def entry(key_id: str = "k1", valid_until: float = 100.0, id: str = "v") -> VerifiedToken:
    return VerifiedToken(
        key_id=key_id, environment_id="env", id_type="video_id", id=id, valid_until=valid_until
    )


def test_hit_until_valid_until_then_miss_and_forgotten() -> None:
    cache = VerifiedTokenCache(10)
    cache.put("t", entry(valid_until=100.0))
    assert cache.get("t", 99.9) == entry(valid_until=100.0)
    assert cache.get("t", 100.0) is None
    assert len(cache) == 0
    assert cache.drop_key("k1") == 0  # the index forgot it too


def test_bounded_oldest_first() -> None:
    cache = VerifiedTokenCache(3)
    for name in ("a", "b", "c", "d"):
        cache.put(name, entry(id=name))
    assert len(cache) == 3
    assert cache.get("a", 0.0) is None
    assert [cache.get(n, 0.0) for n in ("b", "c", "d")] == [
        entry(id="b"),
        entry(id="c"),
        entry(id="d"),
    ]


def test_drop_key_removes_every_token_of_that_key_only() -> None:
    cache = VerifiedTokenCache(10)
    cache.put("a", entry("k1"))
    cache.put("b", entry("k1"))
    cache.put("c", entry("k2"))
    assert cache.drop_key("k1") == 2
    assert cache.get("a", 0.0) is None and cache.get("b", 0.0) is None
    assert cache.get("c", 0.0) == entry("k2")


def test_putting_a_token_again_replaces_it_in_the_index() -> None:
    cache = VerifiedTokenCache(10)
    cache.put("a", entry("k1"))
    cache.put("a", entry("k2"))
    assert cache.drop_key("k1") == 0
    assert cache.drop_key("k2") == 1
    assert len(cache) == 0


def test_capacity_zero_caches_nothing() -> None:
    cache = VerifiedTokenCache(0)
    cache.put("a", entry())
    assert cache.get("a", 0.0) is None
    assert len(cache) == 0
