"""redis-py behind the optional-import guard, the client types, and the URL check.

Every module of the package that touches redis-py imports it from here, so a missing
redis-py is reported once, as a :class:`~embedgate.errors.ConfigurationError` naming
``pip install embedgate[redis]``.
"""

from __future__ import annotations

from typing import Final, Union

from ..errors import ConfigurationError

try:
    import redis
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError as exc:
    raise ConfigurationError(
        "EMBEDGATE_REDIS_URL",
        "the shared Redis cache needs redis-py: pip install embedgate[redis]",
    ) from exc

SCHEMES: Final = (
    "redis",
    "rediss",
    "unix",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
)

SyncClient = Union[redis.Redis, "redis.RedisCluster"]
AsyncClient = Union[aioredis.Redis, "aioredis.RedisCluster"]

_FAILURES: Final = (redis.RedisError, OSError)
_DOWN: Final = object()  # what a guarded call returns when Redis could not be used


def check_url(url: str) -> None:
    """Refuse anything but a Redis URL, without quoting it (it may hold a password)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise ConfigurationError(
            "EMBEDGATE_REDIS_URL",
            "expected a redis://, rediss://, unix://, redis+cluster:// or redis+sentinel:// URL",
        )


__all__ = [
    "SCHEMES",
    "AsyncClient",
    "AsyncRetry",
    "NoBackoff",
    "Retry",
    "SyncClient",
    "aioredis",
    "check_url",
    "redis",
]
