"""Configuration: keyword arguments, a mapping with a prefix (Flask's ``app.config``), or
the environment; validated once, at start-up.

Every setting is a field of :class:`Config` whose metadata gives its parser and help text;
the environment/mapping name is ``EMBEDGATE_`` plus the field name in capitals. Secrets are
held as :class:`~embedgate.secret.Secret` and never shown by ``repr`` or ``str``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

from .audit import load_hook
from .errors import ConfigurationError
from .secret import Secret, redact

PREFIX: Final = "EMBEDGATE_"
MODES: Final = ("token", "sso", "api_key")
MAX_PAGE_DEADLINE: Final = 10.0
PRODUCTION_ENVS: Final = frozenset({"production", "prod", "live"})
ENVIRONMENTS: Final = (
    frozenset({"development", "dev", "test", "testing", "staging", "local", "sandbox"})
    | PRODUCTION_ENVS
)

Parser = Callable[[str, Any], Any]

DAY: Final = 86_400
# Every number a setting may hold: finite, within (low, high) inclusive. A value outside
# is refused at start-up with the bound in the message (EMBEDGATE_LEEWAY=1e12 would make
# verify() accept tokens that expired decades ago).
NUMERIC_BOUNDS: Final[dict[str, tuple[float, float]]] = {
    "ttl": (1, DAY),
    "max_ttl": (1, DAY),
    "min_remaining": (0, 3600),
    "refresh_margin": (0, DAY),
    "leeway": (0, 300),
    "page_deadline": (0.01, 10.0),
    "token_size_budget": (64, 1_048_576),
    "cache_size": (1, 10_000_000),
    "max_inject_bytes": (1, 1 << 30),
    "rate_limit": (1, 1_000_000),
    "user_rate_limit": (1, 1_000_000),
    "user_sessions": (1, 100_000),
    "redis_timeout": (0.01, 30),
    "redis_local_ttl": (0.1, 3600),
    "redis_breaker_threshold": (1, 1000),
    "redis_breaker_cooldown": (0.1, 600),
    "redis_lock_ttl": (0.1, 300),
    "redis_lock_wait": (0, 60),
}


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(name, f"expected a string, got {type(value).__name__}")
    return value.strip()


def _opt_str(name: str, value: Any) -> str | None:
    if value is None:
        return None
    return _str(name, value) or None


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigurationError(name, "expected a whole number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ConfigurationError(name, f"expected a whole number, got {value!r}")


def _opt_float(name: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ConfigurationError(name, "expected a number of seconds, got a boolean")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except (ValueError, OverflowError):
            raise ConfigurationError(name, f"expected a number of seconds, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigurationError(name, f"expected a finite number of seconds, got {value!r}")
    return number


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigurationError(name, f"expected true or false, got {value!r}")


def _opt_bool(name: str, value: Any) -> bool | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    return _bool(name, value)


def _secret(name: str, value: Any) -> Secret | None:
    if value is None or value == "":
        return None
    if isinstance(value, Secret):
        return value
    if isinstance(value, (str, bytes)):
        return Secret(value)
    raise ConfigurationError(name, f"expected a string, got {type(value).__name__}")


def _secret_list(name: str, value: Any) -> tuple[Secret, ...]:
    if value is None or value == "":
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(
        s
        for i, item in enumerate(items)
        if (s := _secret(f"{name}[{i}]", item.strip() if isinstance(item, str) else item))
        is not None
    )


def _names(name: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError(name, f"expected names, got {type(item).__name__}")
        if item.strip():
            out.append(item.strip())
    return tuple(out)


def _req_names(name: str, value: Any) -> tuple[str, ...]:
    return _names(name, value) or ()


def _paths(name: str, value: Any) -> tuple[str, ...]:
    return _names(name, value) or ()


def _json_object(name: str, value: Any) -> Mapping[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                name, f"expected a JSON object: {exc.msg} at position {exc.pos}"
            ) from None
    if not isinstance(value, Mapping):
        raise ConfigurationError(name, f"expected a JSON object, got {type(value).__name__}")
    return dict(value)


def _choice(*choices: str) -> Parser:
    def parse(name: str, value: Any) -> str:
        text = _str(name, value).lower()
        if text not in choices:
            raise ConfigurationError(name, f"expected one of {', '.join(choices)}, got {text!r}")
        return text

    return parse


def _env(name: str, value: Any) -> str:
    text = _str(name, value).lower() or "development"
    if text not in ENVIRONMENTS:
        raise ConfigurationError(
            name, f"expected one of {', '.join(sorted(ENVIRONMENTS))}, got {text!r}"
        )
    return text


def setting(default: Any, parse: Parser, doc: str, *, secret: bool = False) -> Any:
    """Declare a setting: its default, parser and one-line help."""
    return field(default=default, metadata={"parse": parse, "doc": doc, "secret": secret})


@dataclass(frozen=True)
class Config:
    """All embedgate settings. Build with :meth:`load`; see the README's reference."""

    # -- mode and environment
    mode: str = setting(
        "token",
        _choice(*MODES),
        "token (sign after the app's login), sso, or api_key (sandbox only)",
    )
    env: str = setting(
        "development",
        _env,
        "development or production; api_key mode and `embedgate mint` refuse production",
    )
    # -- keys
    secret: Secret | None = setting(None, _secret, "HMAC secret, at least 32 bytes", secret=True)
    previous_secrets: tuple[Secret, ...] = setting(
        (),
        _secret_list,
        "comma-separated retired HMAC secrets still accepted by verify()",
        secret=True,
    )
    algorithm: str | None = setting(
        None,
        _opt_str,
        "HS256/384/512, ES256, EdDSA, PS256, RS256; "
        "default HS256, or inferred from the private key",
    )
    private_key: Secret | None = setting(None, _secret, "PEM private key (asymmetric)", secret=True)
    private_key_file: str | None = setting(None, _opt_str, "path to a PEM private key")
    previous_key_files: tuple[str, ...] = setting(
        (), _paths, "comma-separated PEM files of retired keys, still published in the JWKS"
    )
    previous_key_algorithms: tuple[str, ...] = setting(
        (),
        _req_names,
        "comma-separated algorithms of the retired keys (EMBEDGATE_PREVIOUS_KEY_FILES, or "
        "EMBEDGATE_PREVIOUS_SECRETS), in order (default: EMBEDGATE_ALGORITHM when the key "
        "fits it, else the key's own)",
    )
    next_key_file: str | None = setting(
        None, _opt_str, "PEM file of the next key: published in the JWKS now, signs once promoted"
    )
    next_key_algorithm: str | None = setting(
        None,
        _opt_str,
        "algorithm of EMBEDGATE_NEXT_KEY_FILE (default: EMBEDGATE_ALGORITHM when the key "
        "fits it, else the key's own)",
    )
    key_id: str | None = setting(None, _opt_str, "kid of the signing key (default: thumbprint)")
    # -- claims
    issuer: str = setting("embedgate", _str, "the iss claim")
    audience: str = setting("embedgate", _str, "the aud claim the provider expects")
    typ: str | None = setting("JWT", _opt_str, "the typ header ('' to leave it out)")
    ttl: int = setting(300, _int, "token lifetime in seconds")
    max_ttl: int = setting(3600, _int, "hard cap on EMBEDGATE_TTL")
    min_remaining: int = setting(30, _int, "never serve a token with less life than this")
    refresh_margin: float | None = setting(
        None, _opt_float, "seconds before expiry to refresh (default max(60, 20% of TTL))"
    )
    page_deadline: float = setting(
        0.5,
        _opt_float,
        "longest a page render or the token endpoint waits for a mint, seconds (0 < s <= 10); "
        "past it the page renders without a token and the endpoint answers 503",
    )
    leeway: float = setting(10.0, _opt_float, "clock skew tolerated by verify(), seconds")
    token_size_budget: int = setting(4096, _int, "largest token in bytes")
    allowed_attributes: tuple[str, ...] | None = setting(
        None, _names, "comma-separated attributes that may reach a token (default: all)"
    )
    required_attributes: tuple[str, ...] = setting(
        (), _req_names, "comma-separated attributes (or tenant/email) a principal must have"
    )
    claim_mapping: Mapping[str, Any] | None = setting(
        None,
        _json_object,
        "JSON claim mapping for sso mode, e.g. "
        '{"tenant": "org", "attributes": {"region": "custom.region"}}',
    )
    # -- provider
    provider: str = setting("generic", _str, "generic, toucan, superset, metabase, tableau, looker")
    provider_url: str | None = setting(None, _opt_str, "the provider's base URL")
    api_key: Secret | None = setting(
        None, _secret, "provider API key (remote minting, api_key mode)", secret=True
    )
    sandbox_subject: str = setting(
        "sandbox-developer", _str, "subject used in api_key mode when no user is logged in"
    )
    # -- cache
    cache_size: int = setting(10_000, _int, "in-process cache entries (LRU)")
    redis_url: str | None = setting(
        None,
        _opt_str,
        "URL of a shared cache: redis://, rediss://, unix:// (one server), "
        "redis+cluster://h1:p1,h2:p2 (Cluster seed nodes) or "
        "redis+sentinel://h1:p1,h2:p2/master/0 (Sentinels, master name, db)",
    )
    redis_cluster: bool = setting(
        False, _bool, "treat EMBEDGATE_REDIS_URL (redis:// or rediss://) as a Cluster seed node"
    )
    redis_sentinels: str | None = setting(
        None,
        _opt_str,
        "comma-separated host:port of Sentinels (instead of EMBEDGATE_REDIS_URL); "
        "needs EMBEDGATE_REDIS_SENTINEL_MASTER",
    )
    redis_sentinel_master: str | None = setting(
        None, _opt_str, "the master name the Sentinels watch"
    )
    redis_timeout: float = setting(
        0.25, _opt_float, "seconds to connect to and to read from Redis (0.01 to 30)"
    )
    redis_local_ttl: float = setting(
        30.0,
        _opt_float,
        "longest an entry lives in a worker's in-process tier, seconds (bounds staleness "
        "should an invalidation message be lost; 0.1 to 3600)",
    )
    redis_breaker_threshold: int = setting(
        3, _int, "consecutive Redis failures that open its circuit breaker (1 to 1000)"
    )
    redis_breaker_cooldown: float = setting(
        5.0, _opt_float, "seconds between probes while the Redis breaker is open (0.1 to 600)"
    )
    redis_lock_ttl: float = setting(
        5.0,
        _opt_float,
        "seconds a dead holder's mint lock blocks its key (0.1 to 300; a live holder extends it)",
    )
    redis_lock_wait: float = setting(
        5.0, _opt_float, "longest a request waits for another worker's mint, seconds (0 to 60)"
    )
    redis_encrypt: bool | None = setting(
        None,
        _opt_bool,
        "encrypt cached tokens in Redis (AES-GCM, key derived from the engine's secret); "
        "default: on when EMBEDGATE_SECRET, a private key or EMBEDGATE_API_KEY is set",
    )
    # -- web
    prefix: str = setting("/_embedgate", _str, "URL prefix of the token endpoint, script, JWKS")
    cookie_name: str = setting("embedgate_session", _str, "embedgate's session cookie")
    cookie_secure: bool | None = setting(None, _opt_bool, "Secure cookie flag (default: on https)")
    inject: bool = setting(True, _bool, "inject the token into HTML pages")
    max_inject_bytes: int = setting(1_048_576, _int, "largest HTML body buffered for injection")
    allow_get: bool = setting(False, _bool, "let the token endpoint answer GET")
    rate_limit: int = setting(30, _int, "token endpoint requests per session per minute")
    user_rate_limit: int = setting(
        120, _int, "token endpoint requests per user per minute, all sessions together"
    )
    user_sessions: int = setting(
        20, _int, "sessions per user whose tokens the in-process cache keeps (oldest evicted)"
    )
    # -- operations
    audit_key: Secret | None = setting(
        None,
        _secret,
        "key of the audit trail's subject/session hashes (default: from the secret or API key)",
        secret=True,
    )
    audit_hook: Any = setting(
        None, load_hook, "callable or 'module:function' that receives each audit event"
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("parse") is not None and not _is_parsed(f, value):
                object.__setattr__(self, f.name, f.metadata["parse"](env_name(f.name), value))
        self._validate()

    def _validate(self) -> None:
        for name, (low, high) in NUMERIC_BOUNDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if not math.isfinite(value) or not low <= value <= high:
                raise ConfigurationError(
                    env_name(name), f"must lie between {low:g} and {high:g}, got {value!r}"
                )
        if self.min_remaining >= self.ttl:
            raise ConfigurationError(
                env_name("min_remaining"),
                f"must be below EMBEDGATE_TTL ({self.ttl} s), got {self.min_remaining}",
            )
        if self.refresh_margin is not None and not (
            self.min_remaining < self.refresh_margin < self.ttl
        ):
            raise ConfigurationError(
                env_name("refresh_margin"),
                "must lie strictly between EMBEDGATE_MIN_REMAINING and EMBEDGATE_TTL: a token "
                "is refreshed while it is still served",
            )
        if self.page_deadline is None:
            raise ConfigurationError(
                env_name("page_deadline"),
                f"must be a number of seconds up to {MAX_PAGE_DEADLINE:g}",
            )
        for name in ("redis_timeout", "redis_local_ttl", "redis_breaker_cooldown"):
            if getattr(self, name) is None:
                raise ConfigurationError(env_name(name), "must be a number of seconds")
        if self.redis_lock_ttl is None or self.redis_lock_wait is None:
            raise ConfigurationError(env_name("redis_lock_ttl"), "must be a number of seconds")
        if self.redis_sentinels is not None and self.redis_url is not None:
            raise ConfigurationError(
                "EMBEDGATE_REDIS_SENTINELS",
                "set EMBEDGATE_REDIS_URL or EMBEDGATE_REDIS_SENTINELS, not both",
            )
        if (self.redis_sentinels is None) != (self.redis_sentinel_master is None):
            raise ConfigurationError(
                "EMBEDGATE_REDIS_SENTINEL_MASTER",
                "EMBEDGATE_REDIS_SENTINELS and EMBEDGATE_REDIS_SENTINEL_MASTER go together",
            )
        if self.redis_cluster and self.redis_url is None:
            raise ConfigurationError(
                "EMBEDGATE_REDIS_CLUSTER", "needs EMBEDGATE_REDIS_URL (a seed node)"
            )
        if self.private_key is not None and self.private_key_file is not None:
            raise ConfigurationError(
                "EMBEDGATE_PRIVATE_KEY",
                "set EMBEDGATE_PRIVATE_KEY or EMBEDGATE_PRIVATE_KEY_FILE, not both",
            )
        retired_name, retired = (
            ("EMBEDGATE_PREVIOUS_SECRETS", len(self.previous_secrets))
            if self.secret is not None
            else ("EMBEDGATE_PREVIOUS_KEY_FILES", len(self.previous_key_files))
        )
        if self.previous_key_algorithms and len(self.previous_key_algorithms) != retired:
            raise ConfigurationError(
                "EMBEDGATE_PREVIOUS_KEY_ALGORITHMS",
                f"names {len(self.previous_key_algorithms)} algorithms for {retired} "
                f"{retired_name}; give one per key, in the same order",
            )
        if self.algorithm == "none":
            raise ConfigurationError("EMBEDGATE_ALGORITHM", "'none' is never accepted")
        if not self.prefix.startswith("/") or self.prefix.endswith("/"):
            raise ConfigurationError(
                "EMBEDGATE_PREFIX",
                f"expected a path starting with '/' and not ending with '/', got {self.prefix!r}",
            )
        if self.mode == "api_key" and self.is_production:
            from .errors import ProductionRefusedError

            raise ProductionRefusedError(
                "EMBEDGATE_MODE",
                "api_key mode is for local "
                "development only and refuses EMBEDGATE_ENV="
                f"{self.env}; use mode token or sso in production",
            )
        if self.mode == "api_key" and self.api_key is None:
            raise ConfigurationError(
                "EMBEDGATE_API_KEY", "api_key mode needs the provider's API key"
            )

    @property
    def uses_redis(self) -> bool:
        """Whether a shared Redis tier is configured (a URL or Sentinels)."""
        return self.redis_url is not None or self.redis_sentinels is not None

    @property
    def is_production(self) -> bool:
        return self.env in PRODUCTION_ENVS

    @classmethod
    def load(
        cls,
        mapping: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        prefix: str = PREFIX,
        **overrides: Any,
    ) -> Config:
        """Settings from ``overrides`` (field names), then ``mapping`` (``prefix`` + NAME,
        e.g. Flask's ``app.config``), then ``environ`` (default: ``os.environ``)."""
        environ = os.environ if environ is None else environ
        names = {f.name for f in fields(cls)}
        unknown = set(overrides) - names
        if unknown:
            raise ConfigurationError(
                sorted(unknown)[0],
                f"is not an embedgate setting; expected one of {', '.join(sorted(names))}",
            )
        values: dict[str, Any] = {}
        for name in names:
            key = prefix + name.upper()
            if name in overrides:
                values[name] = overrides[name]
            elif mapping is not None and key in mapping:
                values[name] = mapping[key]
            elif key in environ:
                values[name] = environ[key]
        config = cls(**values)
        # A custom provider's own EMBEDGATE_<PROVIDER>_* keys are its to validate.
        provider_prefix = f"{config.provider.lower()}_"
        if mapping is not None:
            _reject_unknown(mapping, prefix, names, provider_prefix)
        _reject_unknown(environ, prefix, names, provider_prefix)
        return config

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def private_key_pem(self) -> Secret | None:
        """The private key, read from EMBEDGATE_PRIVATE_KEY or EMBEDGATE_PRIVATE_KEY_FILE."""
        if self.private_key is not None:
            return self.private_key
        if self.private_key_file is None:
            return None
        return read_key_file(self.private_key_file, "EMBEDGATE_PRIVATE_KEY_FILE")

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret"):
                shown.append(f"{f.name}={'<set>' if value else '<unset>'}")
            elif value != f.default:
                shown.append(f"{f.name}={redact(repr(value))}")
        return f"Config({', '.join(shown)})"

    __str__ = __repr__


def read_key_file(path: str, setting_name: str) -> Secret:
    try:
        return Secret(Path(path).expanduser().read_bytes())
    except OSError as exc:
        raise ConfigurationError(
            setting_name, f"cannot read the key file ({exc.strerror})"
        ) from None


def _is_parsed(f: dataclasses.Field[Any], value: Any) -> bool:
    # A value equal to the default (same object) was not given and needs no parsing.
    return value is f.default


def _reject_unknown(
    source: Mapping[str, Any], prefix: str, names: set[str], provider_prefix: str
) -> None:
    """Refuse ``prefix``-named keys that are no setting (a typo such as
    ``EMBEDGATE_AUDIANCE``), naming the closest real one."""
    for key in source:
        if not isinstance(key, str) or not key.startswith(prefix):
            continue
        name = key[len(prefix) :].lower()
        if name in names or name.startswith((*_EXTENSION_PREFIXES, provider_prefix)):
            continue
        if name.startswith(_profile_prefixes()):
            continue
        close = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.6)
        hint = f"did you mean {prefix}{close[0].upper()}?" if close else "a typo?"
        raise ConfigurationError(
            key,
            f"is not an embedgate setting ({hint}); see the configuration reference in the README",
        )


# Settings under these sub-prefixes belong to optional parts (provider profiles) that
# validate them themselves, e.g. EMBEDGATE_SUPERSET_USERNAME.
_EXTENSION_PREFIXES: tuple[str, ...] = (
    "toucan_",
    "superset_",
    "metabase_",
    "tableau_",
    "looker_",
    "generic_",
    "demo_",
    "sso_",
    "saml_",
    "interop_",  # the test suite's own switches (EMBEDGATE_INTEROP_*, EMBEDGATE_FUZZ*)
    "fuzz",
)


def _profile_prefixes() -> tuple[str, ...]:
    """Every provider profile's own prefix (``powerbi_``...): another profile's settings
    may sit beside the one in use (imported late: the profiles import this module)."""
    from .providers.base import profile_names

    return tuple(f"{name.lower()}_" for name in profile_names())


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


def reference() -> list[tuple[str, str, str]]:
    """(environment name, default, help) for every setting: the README's table."""
    rows = []
    for f in fields(Config):
        default = f.default
        shown = "" if default is None or default == () else str(default)
        rows.append((env_name(f.name), shown, f.metadata["doc"]))
    return rows


def extension_settings(
    config_source: Mapping[str, Any] | None, section: str, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``EMBEDGATE_<SECTION>_*`` values (lower-case suffixes), from a mapping then the
    environment: how provider profiles read their own settings."""
    environ = os.environ if environ is None else environ
    head = f"{PREFIX}{section.upper()}_"
    out: dict[str, Any] = {}
    for source in (environ, config_source or {}):
        for key, value in source.items():
            if isinstance(key, str) and key.startswith(head):
                out[key[len(head) :].lower()] = value
    return out
