"""Fixtures the API tests share: a real redis-server, per test or per module."""

from collections.abc import Iterator

import pytest

from tests.redis_server import RedisServer, redis_server


@pytest.fixture
def redis(tmp_path) -> Iterator[RedisServer]:
    """A redis-server of the test's own (it may kill it)."""
    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory) -> Iterator[RedisServer]:
    """A redis-server for the module's tests that leave it running (each uses its own keys)."""
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server
