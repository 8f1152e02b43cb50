"""The shared cache on a real Redis Cluster (three masters, three replicas) and a real
Sentinel set-up (a master, a replica, three sentinels), both faces, built from the
``EMBEDGATE_*`` settings as an app builds it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from redis.cluster import key_slot

from embedgate import Config
from embedgate.engine import build_cache
from embedgate.redis_cache import TieredCache, redis_key
from embedgate.redis_cache.topology import Topology
from embedgate.token import EmbedToken
from tests.support.binaries import require_binary
from tests.support.redis_topology import LocalCluster, LocalSentinel, local_cluster, local_sentinel

pytestmark = pytest.mark.redis

SECRET = "topology-tests-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster(require_binary("redis-server"), require_binary("redis-cli")) as c:
        yield c


@pytest.fixture
def sentinel() -> Iterator[LocalSentinel]:
    with local_sentinel(require_binary("redis-server")) as s:
        yield s


def token(subject: str, session: str, *, ttl: float = 300.0, jti: str = "j1") -> EmbedToken:
    now = time.time()
    return EmbedToken(
        token=f"tok-{subject}-{jti}",
        expires_at=now + ttl,
        issued_at=now,
        subject=subject,
        jti=jti,
        refresh_at=now + ttl / 2,
        session_tag=session,
    )


def caches(environ: dict[str, str], count: int) -> list[TieredCache]:
    made = []
    for _ in range(count):
        cache = build_cache(Config.load(environ={"EMBEDGATE_SECRET": SECRET, **environ}))
        assert isinstance(cache, TieredCache)
        assert cache.wait_listening(10)
        made.append(cache)
    return made


def wait_until(check: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


# -- Cluster --------------------------------------------------------------------------


def test_names_of_one_key_share_a_hash_slot() -> None:
    for key in ("a", "session-7|alice", "x" * 300):
        assert key_slot(redis_key("token", key).encode()) == key_slot(
            redis_key("lock", key).encode()
        )
    # ...while different keys spread over the slots.
    assert len({key_slot(redis_key("token", str(i)).encode()) for i in range(50)}) > 40


@pytest.mark.parametrize("form", ["url", "flag"])
def test_cluster_shares_tokens_and_invalidations_across_workers(
    cluster: LocalCluster, form: str
) -> None:
    seed = f"127.0.0.1:{cluster.nodes[1].port}"
    environ = (
        {"EMBEDGATE_REDIS_URL": f"redis+cluster://{seed}"}
        if form == "url"
        else {"EMBEDGATE_REDIS_URL": f"redis://{seed}", "EMBEDGATE_REDIS_CLUSTER": "true"}
    )
    workers = caches(environ, 3)
    try:
        # Sessions whose keys live on every master.
        keys = [f"{form}-session-{i}" for i in range(30)]
        masters = {cluster.master_of(redis_key("token", k)).port for k in keys}
        assert len(masters) == 3
        for i, key in enumerate(keys):
            workers[i % 3].set(key, token(f"user{i}", f"tag{i}"), time.time() + 300)
        for i, key in enumerate(keys):
            found = workers[(i + 1) % 3].get(key)
            assert found is not None
            assert found.subject == f"user{i}"
            workers[(i + 2) % 3].get(key)  # now in every worker's local tier

        # Invalidation by subject, from one worker: gone from Redis and from every
        # worker's local tier (pub/sub reaches every node's subscribers).
        removed = workers[0].invalidate(subject="user4")
        assert removed >= 1
        assert wait_until(lambda: all(w.local.get(keys[4]) is None for w in workers))
        assert all(w.get(keys[4]) is None for w in workers)
        assert all(w.get(keys[5]) is not None for w in workers)
        # And by session.
        workers[2].invalidate(session_tag="tag7")
        assert wait_until(lambda: all(w.get(keys[7]) is None for w in workers))
        assert all(w.shared.breaker.failures == 0 for w in workers)
    finally:
        for worker in workers:
            worker.close()


def test_cluster_lock_is_exclusive_and_async_face_works(cluster: LocalCluster) -> None:
    workers = caches({"EMBEDGATE_REDIS_URL": cluster.url, "EMBEDGATE_REDIS_LOCK_WAIT": "0"}, 2)
    try:
        with workers[0].exclusive("cold") as first:
            assert first is True
            with workers[1].exclusive("cold") as second:
                assert second is False  # held elsewhere; no wait configured

        async def main() -> EmbedToken | None:
            async with workers[1].aexclusive("cold-async") as ours:
                assert ours is True
                await workers[1].aset("cold-async", token("amy", "t-amy"), time.time() + 60)
            return await workers[0].shared.aget("cold-async")

        found = asyncio.run(main())
        assert found is not None
        assert found.subject == "amy"
    finally:
        for worker in workers:
            worker.close()


# -- Sentinel -------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["url", "settings"])
def test_sentinel_shares_tokens_and_survives_failover(sentinel: LocalSentinel, form: str) -> None:
    environ = (
        {"EMBEDGATE_REDIS_URL": sentinel.url}
        if form == "url"
        else {
            "EMBEDGATE_REDIS_SENTINELS": ",".join(
                f"{h}:{p}" for h, p in sentinel.sentinel_addresses
            ),
            "EMBEDGATE_REDIS_SENTINEL_MASTER": sentinel.name,
        }
    )
    environ["EMBEDGATE_REDIS_BREAKER_COOLDOWN"] = "0.5"
    workers = caches(environ, 2)
    try:
        workers[0].set("k", token("sam", "t-sam"), time.time() + 300)
        assert workers[1].shared.get("k") is not None
        old = sentinel.master.port
        sentinel.master.kill()
        sentinel.wait_failover(old)

        # No restart: the workers find the promoted replica through the sentinels.
        def shared_again() -> bool:
            workers[1].set("k2", token("sue", "t-sue"), time.time() + 300)
            return workers[0].shared.get("k2") is not None

        assert wait_until(shared_again, 20)
        assert workers[0].shared.breaker.state == "closed"
    finally:
        for worker in workers:
            worker.close()


# -- settings -------------------------------------------------------------------------


def test_topology_urls() -> None:
    t = Topology.parse("redis+sentinel://:pw@h1:26379,[::1]:26380/mymaster/2")
    assert (t.kind, t.hosts, t.master, t.db, t.password) == (
        "sentinel",
        (("h1", 26379), ("::1", 26380)),
        "mymaster",
        2,
        "pw",
    )
    c = Topology.parse("rediss+cluster://u:p@h1:7000,h2")
    assert (c.kind, c.hosts, c.tls, c.username) == (
        "cluster",
        (("h1", 7000), ("h2", 6379)),
        True,
        "u",
    )
    assert "p" not in repr(c).replace("Topology", "")


@pytest.mark.parametrize(
    "environ",
    [
        {"EMBEDGATE_REDIS_URL": "redis+sentinel://:hunter2@h1:1"},  # no master name
        {"EMBEDGATE_REDIS_URL": "redis+cluster://:hunter2@h1:7000/3"},  # db on a cluster
        {"EMBEDGATE_REDIS_URL": "redis+cluster://:hunter2@h1:port"},
        {"EMBEDGATE_REDIS_URL": "memcached://:hunter2@h1"},
        {"EMBEDGATE_REDIS_SENTINELS": "h1:1"},  # no master
        {"EMBEDGATE_REDIS_SENTINEL_MASTER": "m"},
        {"EMBEDGATE_REDIS_CLUSTER": "yes"},  # no URL
        {"EMBEDGATE_REDIS_URL": "redis://:hunter2@h", "EMBEDGATE_REDIS_TIMEOUT": "0"},
        {"EMBEDGATE_REDIS_URL": "redis://:hunter2@h", "EMBEDGATE_REDIS_LOCK_TTL": "1e9"},
        {"EMBEDGATE_REDIS_URL": "redis://:hunter2@h", "EMBEDGATE_REDIS_BREAKER_THRESHOLD": "0"},
        {"EMBEDGATE_REDIS_URL": "redis://:hunter2@h", "EMBEDGATE_REDIS_BREAKER_COOLDOWN": "nan"},
        {"EMBEDGATE_REDIS_URL": "redis://:hunter2@h", "EMBEDGATE_REDIS_LOCAL_TTL": "-1"},
    ],
)
def test_bad_redis_settings_are_refused_without_quoting_secrets(environ: dict[str, str]) -> None:
    from embedgate.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        build_cache(Config.load(environ={"EMBEDGATE_SECRET": SECRET, **environ}))
    assert "hunter2" not in str(caught.value)
