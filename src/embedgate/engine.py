"""The engine every shell and adapter talks to: settings, principal resolution by mode,
and the token service. Still no HTTP."""

from __future__ import annotations

import logging
import secrets
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .audit import audit_trail
from .cache import CacheBackend, MemoryCache, session_tag
from .clock import SYSTEM_CLOCK, Clock
from .config import Config, extension_settings
from .errors import ConfigurationError, ProductionRefusedError
from .mapping import ClaimMapping, principal_from_user
from .principal import AttributePolicy, Principal
from .providers import get_profile
from .service import TokenService, TokenTiming
from .settings import Settings, Unpack
from .token import EmbedToken

if TYPE_CHECKING:
    from .redis_cache.codec import ValueCodec

log = logging.getLogger("embedgate")

_SANDBOX_BANNER = (
    "embedgate is running in api_key mode: tokens are minted straight from the provider "
    "API key. This is a SANDBOX for local development only. Never use it in production "
    "(set EMBEDGATE_MODE=token or sso)."
)


class Engine:
    """Settings + principal resolution + token service: what middleware calls.

    ``production`` lets the host say it runs in production (e.g. Django's ``not DEBUG``)
    in addition to ``EMBEDGATE_ENV``; api_key mode refuses to start then.
    """

    def __init__(
        self,
        config: Config,
        *,
        config_source: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        cache: CacheBackend | None = None,
        clock: Clock = SYSTEM_CLOCK,
        production: bool = False,
    ) -> None:
        if config.mode == "api_key" and (production or config.is_production):
            raise ProductionRefusedError(
                "EMBEDGATE_MODE",
                "api_key mode is for local development only and refuses to run in production",
            )
        self.config = config
        self.profile = get_profile(config.provider)
        options = extension_settings(config_source, config.provider, environ)
        issuer = self.profile.build_issuer(config, options)
        timing = TokenTiming(
            ttl=config.ttl,
            max_ttl=config.max_ttl,
            min_remaining=config.min_remaining,
            refresh_margin=config.refresh_margin,
        )
        policy = AttributePolicy(
            allowed=None
            if config.allowed_attributes is None
            else frozenset(config.allowed_attributes),
            required=frozenset(config.required_attributes),
        )
        if cache is None:
            cache = build_cache(config, clock)
        self.service = TokenService(
            issuer,
            cache=cache,
            policy=policy,
            timing=timing,
            clock=clock,
            audit=audit_trail(config, issuer.name),
        )
        self.claim_mapping = ClaimMapping.from_mapping(config.claim_mapping or {})
        self._derived: dict[str, bytes] = {}
        self._process_material: bytes | None = None
        if config.mode == "api_key":
            log.warning("%s", _SANDBOX_BANNER)
        _LIVE.add(self)

    @classmethod
    def from_settings(
        cls,
        mapping: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **overrides: Unpack[Settings],
    ) -> Engine:
        """Load and validate the configuration, then build the engine."""
        config = Config.load(mapping, environ=environ, **overrides)
        return cls(config, config_source=mapping, environ=environ)

    @property
    def clock(self) -> Clock:
        return self.service.clock

    def principal_for(self, user: Any) -> Principal | None:
        """The principal for the app's user under the configured mode, or None (anonymous).

        sso: the user is the SSO session's claims (a mapping) or a user object, mapped with
        EMBEDGATE_CLAIM_MAPPING. api_key: anonymous visitors get the sandbox principal.
        """
        principal = principal_from_user(user, self.claim_mapping)
        if principal is None and self.config.mode == "api_key":
            return Principal(subject=self.config.sandbox_subject)
        return principal

    def token_for(
        self, user: Any, session_id: str, resource: str | None = None
    ) -> EmbedToken | None:
        principal = self.principal_for(user)
        if principal is None:
            return None
        return self.service.get_token(principal, session_id, resource)

    async def atoken_for(
        self, user: Any, session_id: str, resource: str | None = None
    ) -> EmbedToken | None:
        principal = self.principal_for(user)
        if principal is None:
            return None
        return await self.service.aget_token(principal, session_id, resource)

    def logout(self, session_id: str) -> int:
        """Purge a session's tokens."""
        return self.service.invalidate_session(session_id)

    async def alogout(self, session_id: str) -> int:
        return await self.service.ainvalidate_session(session_id)

    # -- what the web layer and the adapters call --------------------------------------------

    def get_token(
        self,
        principal: Principal,
        session_id: str,
        resource: str | None = None,
        *,
        deadline: float | None = None,
    ) -> EmbedToken:
        """The token for ``principal`` in ``session_id``: cached, minted when needed."""
        return self.service.get_token(principal, session_id, resource, deadline=deadline)

    async def aget_token(
        self,
        principal: Principal,
        session_id: str,
        resource: str | None = None,
        *,
        deadline: float | None = None,
    ) -> EmbedToken:
        """Async face of :meth:`get_token`."""
        return await self.service.aget_token(principal, session_id, resource, deadline=deadline)

    def holds(self, principal: Principal, session_id: str, resource: str) -> bool:
        """Whether the session was granted ``resource`` (a token for it is or was held)."""
        return self.service.holds(principal, session_id, resource)

    async def aholds(self, principal: Principal, session_id: str, resource: str) -> bool:
        """Async face of :meth:`holds`."""
        return await self.service.aholds(principal, session_id, resource)

    def purge_user(self, session_id: str, subject: str) -> int:
        """Purge the tokens ``session_id`` holds for ``subject`` (a user gone from it)."""
        return self.service.cache.invalidate(session_tag=session_tag(session_id), subject=subject)

    async def apurge_user(self, session_id: str, subject: str) -> int:
        """Async face of :meth:`purge_user`."""
        cache = self.service.cache
        return await cache.ainvalidate(session_tag=session_tag(session_id), subject=subject)

    def logout_subject(self, subject: str) -> int:
        """Purge every token of ``subject`` (all sessions)."""
        return self.service.invalidate_subject(subject)

    def check_principal(self, principal: Principal) -> None:
        """Apply the attribute policy (raises :class:`~embedgate.PrincipalError` on refusal)."""
        self.service.policy.apply(principal)

    def derived_key(self, purpose: str) -> bytes:
        """32 bytes for ``purpose`` (session ids, Redis encryption, keyed hashes), derived
        with HKDF-SHA256 from the engine's secret material: ``EMBEDGATE_SECRET``, else the
        private key, else ``EMBEDGATE_API_KEY``. Without any, a random key of this process
        (each worker then has its own: set ``EMBEDGATE_SECRET`` when running several)."""
        known = self._derived.get(purpose)
        if known is not None:
            return known
        material = _secret_material(self.config)
        if material is None:
            if self._process_material is None:
                log.warning(
                    "embedgate: no secret to derive keys from; session ids and cached values "
                    "are keyed per process (set EMBEDGATE_SECRET when running several workers)"
                )
                self._process_material = secrets.token_bytes(32)
            material = self._process_material
        key = derive_key(material, purpose)
        self._derived[purpose] = key
        return key

    def jwks(self) -> dict[str, Any] | None:
        return self.service.issuer.jwks()

    def __repr__(self) -> str:
        return f"Engine(config={self.config!r})"


# Engines alive in this process: embedgate.testing verifies tokens with their keys when a
# test names no app.
_LIVE: weakref.WeakSet[Engine] = weakref.WeakSet()


def live_engines() -> list[Engine]:
    """The engines alive in this process, oldest first (for embedgate.testing)."""
    return list(_LIVE)


def derive_key(material: bytes, purpose: str) -> bytes:
    """32 bytes for ``purpose`` from secret ``material`` (HKDF-SHA256)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"embedgate derived key v1",
        info=purpose.encode("utf-8"),
    ).derive(material)


def _secret_material(config: Config) -> bytes | None:
    for secret in (config.secret, config.private_key_pem(), config.api_key):
        if secret is not None and len(secret):
            return secret.reveal_bytes()
    return None


def build_cache(config: Config, clock: Clock = SYSTEM_CLOCK) -> CacheBackend:
    """The in-process cache, or the shared Redis tier when EMBEDGATE_REDIS_URL is set."""
    local = MemoryCache(maxsize=config.cache_size, clock=clock, user_sessions=config.user_sessions)
    if not config.uses_redis:
        return local
    # Optional extra: embedgate[redis].
    from .redis_cache import CircuitBreaker, RedisCache, TieredCache
    from .redis_cache.topology import Topology

    topology = Topology.from_settings(
        config.redis_url,
        cluster=config.redis_cluster,
        sentinels=config.redis_sentinels,
        sentinel_master=config.redis_sentinel_master,
    )
    assert topology is not None
    shared = RedisCache.from_topology(
        topology,
        timeout=config.redis_timeout,
        clock=clock,
        codec=redis_codec(config),
        lock_ttl=config.redis_lock_ttl,
        lock_wait=config.redis_lock_wait,
        breaker=CircuitBreaker(config.redis_breaker_threshold, config.redis_breaker_cooldown),
    )
    return TieredCache(local, shared, local_ttl=config.redis_local_ttl, clock=clock)


def redis_codec(config: Config) -> ValueCodec:
    """Subject hashes keyed, and values encrypted (EMBEDGATE_REDIS_ENCRYPT, on by default
    when there is a secret to derive the key from), with keys derived from the engine's
    secret material: the same in every worker."""
    from .redis_cache.codec import ValueCodec

    material = _secret_material(config)
    encrypt = config.redis_encrypt
    if encrypt is None:
        encrypt = material is not None
    if material is None:
        if encrypt:
            raise ConfigurationError(
                "EMBEDGATE_REDIS_ENCRYPT",
                "needs EMBEDGATE_SECRET, a private key or EMBEDGATE_API_KEY to derive the key from",
            )
        return ValueCodec()
    return ValueCodec(
        tag_key=derive_key(material, "redis subject hash"),
        cipher_key=derive_key(material, "redis value encryption") if encrypt else None,
    )
