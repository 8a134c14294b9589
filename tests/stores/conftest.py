"""Fixtures the store tests share: ``open_store`` (the LiveStore contract suite) and
``open_redis`` / ``private_redis`` (the Redis live store's own tests)."""

from tests.stores.contract_kit import open_store  # noqa: F401
from tests.stores.redis_kit import open_redis, private_redis  # noqa: F401
