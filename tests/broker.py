"""The Redis server on the machine as a Celery broker for end-to-end tests: one dedicated database, emptied."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

REDIS_URL = os.environ.get("NIGHTSHIFT_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")


@contextmanager
def redis_broker(url: str = REDIS_URL) -> Iterator[str]:
    """Yield `url` (a Redis database the test may own) emptied before and after; fail naming it if Redis is down."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"no Redis at {url} ({exc}); start it (.ci/run does) or set NIGHTSHIFT_TEST_REDIS_URL")
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
