"""The keyword arguments every settings-taking entry point accepts, typed for checkers.

``EmbedgateMiddleware(app, secret=..., ttl=...)``, ``Engine.from_settings(...)`` and
``EmbedGate(app, ...)`` take ``**settings: Unpack[Settings]``: a type checker then knows each
setting, and Starlette's ``app.add_middleware(EmbedgateMiddleware, ...)`` type-checks (a bare
``**settings: Any`` defeats its ParamSpec). Values may be given as text, as from the
environment, or as their own type. tests/core checks these keys against :class:`Config`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypedDict

from .secret import Secret

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

SecretValue = str | bytes | Secret
Names = str | Iterable[str]


class Settings(TypedDict, total=False):
    """One optional key per :class:`~embedgate.config.Config` field."""

    mode: str
    env: str
    secret: SecretValue | None
    previous_secrets: str | Iterable[SecretValue]
    algorithm: str | None
    private_key: SecretValue | None
    private_key_file: str | None
    previous_key_files: Names
    previous_key_algorithms: Names
    next_key_file: str | None
    next_key_algorithm: str | None
    key_id: str | None
    issuer: str
    audience: str
    typ: str | None
    ttl: int | str
    max_ttl: int | str
    min_remaining: int | str
    refresh_margin: float | str | None
    page_deadline: float | str
    leeway: float | str
    token_size_budget: int | str
    allowed_attributes: Names | None
    required_attributes: Names
    claim_mapping: str | Mapping[str, Any] | None
    provider: str
    provider_url: str | None
    api_key: SecretValue | None
    sandbox_subject: str
    cache_size: int | str
    redis_url: str | None
    redis_encrypt: bool | str | None
    redis_cluster: bool | str
    redis_sentinels: str | None
    redis_sentinel_master: str | None
    redis_timeout: float | str
    redis_local_ttl: float | str
    redis_breaker_threshold: int | str
    redis_breaker_cooldown: float | str
    redis_lock_ttl: float | str
    redis_lock_wait: float | str
    prefix: str
    cookie_name: str
    cookie_secure: bool | str | None
    inject: bool | str
    max_inject_bytes: int | str
    allow_get: bool | str
    rate_limit: int | str
    audit_key: SecretValue | None
    audit_hook: str | Callable[[dict[str, Any]], None] | None
    user_rate_limit: int | str
    user_sessions: int | str


__all__ = ["Settings", "Unpack"]
