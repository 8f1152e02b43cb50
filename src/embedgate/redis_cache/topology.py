"""Where the shared cache lives: one server, a Redis Cluster, or a Sentinel-watched master.

:class:`Topology` is parsed from ``EMBEDGATE_REDIS_URL`` (or from the separate
``EMBEDGATE_REDIS_CLUSTER`` / ``EMBEDGATE_REDIS_SENTINELS`` settings) and builds both faces'
clients with the same timeouts and no client-side retries (the circuit breaker handles
failures). URL forms::

    redis://host:6379/0, rediss://..., unix:///run/redis.sock   one server
    redis+cluster://host1:7000,host2:7001                       Cluster seed nodes
    redis+sentinel://host1:26379,host2:26379/mymaster/0         Sentinels, master name, db

``rediss+cluster`` and ``rediss+sentinel`` use TLS to the data nodes. A password in the
URL (``redis+sentinel://:pw@...``) is the data nodes'; the Sentinels are asked without one.
Error messages never quote the URL: it may hold a password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import unquote

from ..errors import ConfigurationError
from .client import (
    AsyncClient,
    AsyncRetry,
    NoBackoff,
    Retry,
    SyncClient,
    aioredis,
    redis,
)

SETTING: Final = "EMBEDGATE_REDIS_URL"
SINGLE_SCHEMES: Final = ("redis", "rediss", "unix")
CLUSTER_SCHEMES: Final = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES: Final = ("redis+sentinel", "rediss+sentinel")
ALL_SCHEMES: Final = SINGLE_SCHEMES + CLUSTER_SCHEMES + SENTINEL_SCHEMES

Kind = Literal["single", "cluster", "sentinel"]


def _refuse(detail: str, setting: str = SETTING) -> ConfigurationError:
    return ConfigurationError(setting, detail)


def _hosts(text: str, setting: str, default_port: int) -> tuple[tuple[str, int], ...]:
    """``host:port,host:port`` (IPv6 in brackets) as pairs; never quotes the input."""
    hosts: list[tuple[str, int]] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        if part.startswith("["):
            host, _, rest = part[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port_text = part.rpartition(":") if ":" in part else (part, "", "")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise _refuse("a host's port is not a number", setting) from None
        if not host or not 0 < port < 65536:
            raise _refuse("expected host:port pairs separated by commas", setting)
        hosts.append((host, port))
    if not hosts:
        raise _refuse("names no host", setting)
    if len(hosts) > 64:
        raise _refuse("names more than 64 hosts", setting)
    return tuple(hosts)


@dataclass(frozen=True)
class Topology:
    """One server (``url``), Cluster seed nodes, or Sentinels plus a master name."""

    kind: Kind
    url: str | None = field(default=None, repr=False)
    hosts: tuple[tuple[str, int], ...] = ()
    master: str | None = None
    db: int = 0
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> Topology:
        """The topology a URL names; ConfigurationError (never quoting it) if malformed."""
        scheme, sep, rest = url.partition("://")
        scheme = scheme.lower()
        if not sep or scheme not in ALL_SCHEMES:
            raise _refuse(
                "expected redis://, rediss://, unix://, redis+cluster:// or redis+sentinel://"
            )
        if scheme in SINGLE_SCHEMES:
            return cls("single", url=url)
        netloc, _, path = rest.partition("/")
        path, _, _query = path.partition("?")
        username = password = None
        if "@" in netloc:
            auth, _, netloc = netloc.rpartition("@")
            user, colon, secret = auth.partition(":")
            username = unquote(user) or None
            password = unquote(secret) if colon else None
        hosts = _hosts(netloc, SETTING, 26379 if scheme in SENTINEL_SCHEMES else 6379)
        parts = [p for p in path.split("/") if p]
        master = None
        if scheme in SENTINEL_SCHEMES:
            if not parts:
                raise _refuse("a redis+sentinel:// URL needs the master's name: .../mymaster/0")
            master, parts = unquote(parts[0]), parts[1:]
        if len(parts) > 1:
            raise _refuse("too many path segments")
        try:
            db = int(parts[0]) if parts else 0
        except ValueError:
            raise _refuse("the database must be a number") from None
        kind: Kind = "cluster" if scheme in CLUSTER_SCHEMES else "sentinel"
        if kind == "cluster" and db != 0:
            raise _refuse("Redis Cluster has database 0 only")
        if not 0 <= db <= 1_000_000:
            raise _refuse("the database number is out of range")
        return cls(
            kind,
            hosts=hosts,
            master=master,
            db=db,
            username=username,
            password=password,
            tls=scheme.startswith("rediss"),
        )

    @classmethod
    def from_settings(
        cls,
        url: str | None,
        *,
        cluster: bool = False,
        sentinels: str | None = None,
        sentinel_master: str | None = None,
    ) -> Topology | None:
        """The topology from ``EMBEDGATE_REDIS_URL``, ``EMBEDGATE_REDIS_CLUSTER`` and
        ``EMBEDGATE_REDIS_SENTINELS`` / ``EMBEDGATE_REDIS_SENTINEL_MASTER``; None: no Redis."""
        if sentinels:
            if url:
                raise _refuse(
                    "set EMBEDGATE_REDIS_URL or EMBEDGATE_REDIS_SENTINELS, not both",
                    "EMBEDGATE_REDIS_SENTINELS",
                )
            if not sentinel_master:
                raise _refuse(
                    "EMBEDGATE_REDIS_SENTINELS needs EMBEDGATE_REDIS_SENTINEL_MASTER",
                    "EMBEDGATE_REDIS_SENTINEL_MASTER",
                )
            hosts = _hosts(sentinels, "EMBEDGATE_REDIS_SENTINELS", 26379)
            return cls("sentinel", hosts=hosts, master=sentinel_master)
        if sentinel_master:
            raise _refuse(
                "is set but EMBEDGATE_REDIS_SENTINELS is not", "EMBEDGATE_REDIS_SENTINEL_MASTER"
            )
        if url is None:
            if cluster:
                raise _refuse("EMBEDGATE_REDIS_CLUSTER needs EMBEDGATE_REDIS_URL (a seed node)")
            return None
        topology = cls.parse(url)
        if cluster and topology.kind != "cluster":
            if topology.kind == "sentinel" or url.lower().startswith("unix:"):
                raise _refuse("EMBEDGATE_REDIS_CLUSTER needs a redis:// or rediss:// seed node URL")
            scheme, _, rest = url.partition("://")
            topology = cls.parse(f"{scheme.lower()}+cluster://{rest}")
        return topology

    # -- clients -----------------------------------------------------------------------

    def clients(self, timeout: float) -> tuple[SyncClient, AsyncClient]:
        """A sync and an async client: ``timeout`` seconds to connect and to read, no
        client-side retries."""
        common: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        try:
            if self.kind == "single":
                return self._single(common)
            if self.kind == "cluster":
                return self._cluster(common)
            return self._sentinel(common)
        except (ValueError, TypeError):
            raise _refuse("not a valid Redis URL (check its options)") from None

    def _auth(self) -> dict[str, Any]:
        auth: dict[str, Any] = {}
        if self.username:
            auth["username"] = self.username
        if self.password is not None:
            auth["password"] = self.password
        if self.tls:
            auth["ssl"] = True
        return auth

    def _single(self, common: dict[str, Any]) -> tuple[SyncClient, AsyncClient]:
        assert self.url is not None
        # TCP keepalive notices a silently dead peer; Unix sockets do not take the option.
        keepalive = {} if self.url.lower().startswith("unix://") else {"socket_keepalive": True}
        sync = redis.Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), **keepalive, **common)
        async_ = aioredis.Redis.from_url(self.url, retry=AsyncRetry(NoBackoff(), 0), **common)
        return sync, async_

    def _cluster(self, common: dict[str, Any]) -> tuple[SyncClient, AsyncClient]:
        from redis.asyncio.cluster import ClusterNode as AsyncNode
        from redis.asyncio.cluster import RedisCluster as AsyncCluster
        from redis.cluster import ClusterNode, RedisCluster

        # One attempt per call, then the slot map is refreshed on the next one: a failover
        # costs a few failed calls (the breaker's business), never a stall.
        sync = RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in self.hosts],  # type: ignore[no-untyped-call]
            retry=Retry(NoBackoff(), 0),
            socket_keepalive=True,
            **self._auth(),
            **common,
        )
        async_ = AsyncCluster(
            startup_nodes=[AsyncNode(h, p) for h, p in self.hosts],
            retry=AsyncRetry(NoBackoff(), 0),
            **self._auth(),
            **common,
        )
        return sync, async_

    def _sentinel(self, common: dict[str, Any]) -> tuple[SyncClient, AsyncClient]:
        from redis.asyncio.sentinel import Sentinel as AsyncSentinel
        from redis.sentinel import Sentinel

        assert self.master is not None
        hosts = list(self.hosts)
        options = {"db": self.db, **self._auth(), **common}
        # redis.sentinel is untyped.
        watchers = Sentinel(hosts, sentinel_kwargs=dict(common))  # type: ignore[no-untyped-call]
        sync = watchers.master_for(  # type: ignore[no-untyped-call]
            self.master, retry=Retry(NoBackoff(), 0), **options
        )
        async_ = AsyncSentinel(hosts, sentinel_kwargs=dict(common)).master_for(  # type: ignore[no-untyped-call]
            self.master, retry=AsyncRetry(NoBackoff(), 0), **options
        )
        return sync, async_

    def __repr__(self) -> str:
        where = "url" if self.kind == "single" else f"{len(self.hosts)} host(s)"
        return f"Topology({self.kind}, {where})"
