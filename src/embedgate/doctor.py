"""``embedgate doctor``: check a deployment from its environment, one line per check.

Each check says ``ok``, ``fail`` (with what to fix) or ``skip`` (not applicable here).
The deployment is healthy when nothing fails. Checks never print a secret: URLs lose their
credentials, keys are named by ``kid``.
"""

from __future__ import annotations

import json
import math
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from .config import Config, extension_settings
from .errors import EmbedgateError
from .issuers.base import Issuer, IssueRequest
from .keys import KeySet
from .principal import Principal

if TYPE_CHECKING:
    from .redis_cache.codec import ValueCodec

Status = Literal["ok", "fail", "skip"]
TIMEOUT: Final = 5.0
DOCTOR_SUBJECT: Final = "embedgate-doctor"
REDIS_MIN_VERSION: Final = (7, 0)
MAX_SKEW: Final = 5.0  # seconds; the provider's Date header has a resolution of 1 s
SAMPLE_KEYS: Final = 200  # Redis keys looked at, at most
_TOKEN_FIELDS: Final = frozenset({"token", "expires_at", "issued_at", "subject"})
_SEALED_PREFIX: Final = "e1:"  # redis_cache.codec's sealed values


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Options:
    """What the command line adds to the environment."""

    app_url: str | None = None  # the deployed app, whose JWKS is compared
    mint: bool = True  # try a test mint where the profile allows a dry run
    resource: str | None = None  # the resource of the test mint (resource-bound providers)


def redact(url: str) -> str:
    """``url`` without user name and password."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class Doctor:
    """Runs the checks over one environment (``os.environ`` by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None, options: Options | None = None):
        self.environ = environ
        self.options = options or Options()
        self.config: Config | None = None
        self.keys: KeySet | None = None
        self.issuer: Issuer | None = None
        self.profile: Any = None
        # The provider's answer to a HEAD of its base URL: status, headers, local midpoint.
        self._probe: tuple[int, Mapping[str, str], float] | None = None

    def run(self) -> list[Check]:
        """Every check, in order (later ones skip what an earlier failure makes moot)."""
        return list(self._checks())

    def _checks(self) -> Iterator[Check]:
        yield self.settings()
        if self.config is None:
            return
        yield self.production()
        yield self.key_strength()
        yield self.rotation()
        yield self.provider()
        yield self.clock_skew()
        yield self.test_mint()
        yield from self.redis()
        yield self.jwks()

    # -- settings --------------------------------------------------------------------------

    def settings(self) -> Check:
        try:
            config = Config.load(environ=self.environ)
            from .providers import get_profile

            profile = get_profile(config.provider)
            options = extension_settings(None, config.provider, self.environ)
            issuer = profile.build_issuer(config, options)
        except EmbedgateError as error:
            setting = getattr(error, "setting", "EMBEDGATE_*")
            return Check("settings", "fail", str(error), f"fix {setting}")
        self.config, self.profile, self.issuer = config, profile, issuer
        return Check(
            "settings",
            "ok",
            f"valid: provider {config.provider}, mode {config.mode}, env {config.env}",
        )

    def production(self) -> Check:
        config = self._config()
        if not config.is_production:
            return Check(
                "production",
                "skip",
                f"EMBEDGATE_ENV is {config.env}: production rules not applied",
            )
        if config.mode == "api_key":
            return Check(
                "production",
                "fail",
                "api_key mode is a sandbox and refuses to run in production",
                "set EMBEDGATE_MODE=token (or sso)",
            )
        if config.cookie_secure is False:
            return Check(
                "production",
                "fail",
                "the session cookie is sent without Secure",
                "unset EMBEDGATE_COOKIE_SECURE (Secure on https) or set it to true",
            )
        return Check("production", "ok", f"mode {config.mode}; cookies Secure on https")

    # -- keys ------------------------------------------------------------------------------

    def _keyset(self) -> KeySet | None:
        if self.keys is None:
            from .keys import keyset_from_config

            config = self._config()
            if config.secret is None and config.private_key_pem() is None:
                return None
            self.keys = keyset_from_config(config)
        return self.keys

    def key_strength(self) -> Check:
        config = self._config()
        try:
            keys = self._keyset()
        except EmbedgateError as error:
            return Check("key", "fail", str(error), "fix the signing key settings")
        if keys is None:
            if config.api_key is None:
                return Check("key", "skip", f"{config.provider} needs no signing key here")
            return _api_key_check(config.api_key.reveal_bytes())
        key = keys.signing_key
        if key.is_symmetric:
            secret: bytes = key.signing_material()
            bits = _estimated_bits(secret)
            if bits < 128:
                return Check(
                    "key",
                    "fail",
                    f"{key.algorithm} secret (kid {key.kid}) looks guessable "
                    f"(about {bits} bits of entropy)",
                    "make a random one: embedgate keygen",
                )
            return Check("key", "ok", f"{key.algorithm} secret, kid {key.kid}, {len(secret)} bytes")
        return Check("key", "ok", f"{key.algorithm} private key, kid {key.kid}")

    def rotation(self) -> Check:
        try:
            keys = self._keyset()
        except EmbedgateError:
            return Check("rotation", "skip", "no usable signing key")
        if keys is None:
            return Check("rotation", "skip", "no signing key")
        signing = keys.signing_key
        older = [k.kid for k in keys.keys[: list(keys.keys).index(signing)]]
        newer = [k.kid for k in keys.keys[list(keys.keys).index(signing) + 1 :] if not k.active]
        parts = [f"signing with kid {signing.kid}"]
        parts.append(f"retired still verified: {', '.join(older)}" if older else "no retired key")
        parts.append(f"next published: {', '.join(newer)}" if newer else "no next key published")
        return Check("rotation", "ok", "; ".join(parts))

    # -- the provider ----------------------------------------------------------------------

    def _provider_url(self) -> str | None:
        url = self._config().provider_url
        if url is None and self.issuer is not None:
            url = getattr(self.issuer, "base_url", None)
        return url

    def provider(self) -> Check:
        url = self._provider_url()
        if url is None:
            return Check("provider", "skip", f"{self._config().provider} calls no provider URL")
        started, clock = time.perf_counter(), time.time()
        try:
            status, headers, _ = _http("HEAD", url)
        except OSError as error:
            return Check(
                "provider",
                "fail",
                f"{redact(url)} is unreachable ({type(error).__name__})",
                "check EMBEDGATE_PROVIDER_URL, DNS and the firewall",
            )
        elapsed = time.perf_counter() - started
        self._probe = (status, headers, clock + elapsed / 2)
        return Check(
            "provider", "ok", f"{redact(url)} answered HTTP {status} in {elapsed * 1000:.0f} ms"
        )

    def clock_skew(self) -> Check:
        url = self._provider_url()
        if url is None or self._probe is None:
            return Check("clock", "skip", "no provider answer to compare clocks with")
        status, headers, now = self._probe
        date = headers.get("date")
        if date is None:
            return Check("clock", "skip", f"{redact(url)} answered HTTP {status} without Date")
        try:
            skew = parsedate_to_datetime(date).timestamp() - now
        except (TypeError, ValueError):
            return Check("clock", "skip", f"{redact(url)} sent an unreadable Date header")
        limit = max(MAX_SKEW, 1.0)
        detail = f"{skew:+.1f} s against {redact(url)} (HTTP {status})"
        if abs(skew) > limit + 1:  # the Date header is whole seconds
            return Check(
                "clock",
                "fail",
                f"skew {detail}",
                "synchronise this host's clock (NTP); tokens may be refused as not yet valid",
            )
        return Check("clock", "ok", f"skew {detail}")

    def test_mint(self) -> Check:
        config = self._config()
        issuer = self.issuer
        assert issuer is not None
        from .issuers.remote import RemoteMinter

        remote = isinstance(issuer, RemoteMinter)
        if not self.options.mint:
            return Check("mint", "skip", "--no-mint")
        if remote and not getattr(self.profile, "dry_run", False):
            return Check("mint", "skip", f"{config.provider} does not allow a dry-run mint")
        resource = self.options.resource
        if resource is None and not getattr(self.profile, "session_tokens", True):
            return Check(
                "mint", "skip", f"{config.provider} tokens are per resource: pass --resource"
            )
        attributes = dict.fromkeys(config.required_attributes, "doctor")
        principal = Principal(subject=DOCTOR_SUBJECT, attributes=attributes)
        request = IssueRequest(principal, time.time(), config.ttl, resource)
        started = time.perf_counter()
        try:
            token = issuer.issue(request)
        except EmbedgateError as error:
            return Check("mint", "fail", f"test mint refused: {error}", _mint_fix(error))
        elapsed = (time.perf_counter() - started) * 1000
        if not remote and token.token.count(".") == 2:
            problem = self._verify_own(token.token)
            if problem is not None:
                return Check("mint", "fail", problem, "deploy matching key settings")
        where = "the provider accepted" if remote else "signed and verified locally:"
        left = int(token.expires_at - time.time())
        return Check("mint", "ok", f"{where} a test mint ({elapsed:.0f} ms, {left} s of life)")

    def _verify_own(self, token: str) -> str | None:
        """Why a locally signed test token does not verify with the configured keys."""
        from .verify import verify

        config, keys = self._config(), self._keyset()
        if keys is None:
            return None
        try:
            verify(token, keys, audience=config.audience, issuer=config.issuer)
        except EmbedgateError as error:
            return f"the test token does not verify with the configured keys: {error}"
        return None

    # -- Redis -----------------------------------------------------------------------------

    def redis(self) -> Iterator[Check]:
        url = self._config().redis_url
        if url is None:
            yield Check("redis", "skip", "no EMBEDGATE_REDIS_URL: in-process cache only")
            return
        try:
            import redis as redis_py
        except ImportError:
            yield Check(
                "redis", "fail", "the redis client is missing", "pip install 'embedgate[redis]'"
            )
            return
        client = redis_py.Redis.from_url(
            url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, decode_responses=True
        )
        try:
            started = time.perf_counter()
            client.ping()
            rtt = (time.perf_counter() - started) * 1000
            version = str(client.info("server").get("redis_version", "0"))
            yield _redis_version_check(redact(url), version, rtt)
            yield _redis_write_check(client)
            yield _redis_keys_check(client, self._redis_codec())
        except redis_py.RedisError as error:
            yield Check(
                "redis",
                "fail",
                f"{redact(url)}: {type(error).__name__}",
                "check EMBEDGATE_REDIS_URL, that Redis runs and accepts this client",
            )
        finally:
            client.close()

    # -- JWKS ------------------------------------------------------------------------------

    def jwks(self) -> Check:
        try:
            keys = self._keyset()
        except EmbedgateError:
            return Check("jwks", "skip", "no usable signing key")
        if keys is None:
            return Check("jwks", "skip", "no signing key of embedgate's to publish")
        expected = keys.jwks()
        kids = {k["kid"] for k in expected["keys"]}
        if self.options.app_url is None:
            signing = keys.signing_key
            if not keys.has_public_keys:
                return Check("jwks", "ok", "HMAC keys: nothing is published (by design)")
            if signing.kid not in kids:
                return Check("jwks", "fail", f"the signing key {signing.kid} is not published")
            return Check(
                "jwks",
                "ok",
                f"{len(kids)} key(s) published, signing key included "
                "(--app-url compares the deployed app's)",
            )
        url = self.options.app_url.rstrip("/") + self._config().prefix + "/jwks.json"
        try:
            status, _, body = _http("GET", url)
        except OSError as error:
            return Check(
                "jwks",
                "fail",
                f"{redact(url)} unreachable ({type(error).__name__})",
                "check --app-url",
            )
        if not keys.has_public_keys:
            if status == 404:
                return Check("jwks", "ok", "HMAC keys: the app publishes none (404)")
            return Check("jwks", "fail", f"{redact(url)} answered HTTP {status}, expected 404")
        try:
            published = {k.get("kid"): k for k in json.loads(body)["keys"]}
        except (ValueError, KeyError, TypeError, AttributeError):
            return Check("jwks", "fail", f"{redact(url)} (HTTP {status}) is not a JWKS")
        mine = {k["kid"]: k for k in expected["keys"]}
        missing = sorted(kid for kid in mine if published.get(kid) != mine[kid])
        extra = sorted(str(kid) for kid in published if kid not in mine)
        if missing or extra:
            problems = []
            if missing:
                problems.append(f"missing or different: {', '.join(missing)}")
            if extra:
                problems.append(f"not among the signing keys: {', '.join(extra)}")
            return Check(
                "jwks",
                "fail",
                f"{redact(url)}: " + "; ".join(problems),
                "deploy the same key settings to every instance",
            )
        return Check("jwks", "ok", f"{redact(url)} publishes exactly the {len(mine)} key(s)")

    def _redis_codec(self) -> ValueCodec | None:
        """The codec the app's workers use for Redis values (None: settings it refuses)."""
        from .engine import redis_codec

        try:
            return redis_codec(self._config())
        except EmbedgateError:
            return None

    def _config(self) -> Config:
        assert self.config is not None
        return self.config


def _http(method: str, url: str) -> tuple[int, Mapping[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers={"user-agent": "embedgate"})  # noqa: S310 - the operator's URL
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            headers = {k.lower(): v for k, v in response.headers.items()}
            return response.status, headers, response.read(1_048_576)
    except urllib.error.HTTPError as error:  # an answer all the same
        headers = {k.lower(): v for k, v in error.headers.items()}
        return error.code, headers, error.read(1_048_576)


def _estimated_bits(secret: bytes) -> int:
    """A rough entropy estimate: length times log2 of the distinct symbols (≤ 8 per byte)."""
    symbols = len(set(secret))
    return int(len(secret) * min(8.0, math.log2(symbols))) if symbols > 1 else 0


def _api_key_check(key: bytes) -> Check:
    bits = _estimated_bits(key)
    if bits < 96:
        return Check(
            "key",
            "fail",
            f"EMBEDGATE_API_KEY looks too short or guessable (~{bits} bits)",
            ("use the key the provider issued"),
        )
    return Check("key", "ok", f"API key set ({len(key)} characters; never printed)")


def _mint_fix(error: EmbedgateError) -> str:
    code = getattr(error, "code", "")
    fixes: dict[str, str] = {
        "provider_rejected": "check the provider credentials (EMBEDGATE_API_KEY, ...)",
        "provider_unavailable": "check EMBEDGATE_PROVIDER_URL and the provider's status",
        "provider_timeout": "check the network path to the provider",
        "provider_rate_limited": "retry later; the provider is rate limiting",
    }
    return fixes.get(code, "see the message")


def _redis_version_check(where: str, version: str, rtt: float) -> Check:
    try:
        parts = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        parts = (0, 0)
    detail = f"{where}: Redis {version}, round trip {rtt:.1f} ms"
    if parts < REDIS_MIN_VERSION:
        return Check("redis", "fail", detail, "embedgate needs Redis 7 or newer")
    return Check("redis", "ok", detail)


def _redis_write_check(client: Any) -> Check:
    from .redis_cache.keys import PREFIX

    probe = f"{PREFIX}doctor:{secrets.token_hex(8)}"
    value = json.dumps({"probe": True})
    client.set(probe, value, px=10_000)
    try:
        back, ttl = client.get(probe), client.pttl(probe)
    finally:
        client.delete(probe)
    if back != value or not 0 < ttl <= 10_000:
        return Check(
            "redis.write",
            "fail",
            "a probe key did not read back with its expiry",
            "check that nothing rewrites embedgate:* keys (eviction policy, proxies)",
        )
    return Check("redis.write", "ok", "set with PX, read back, deleted")


def _redis_keys_check(client: Any, codec: ValueCodec | None) -> Check:
    from .redis_cache.keys import PREFIX

    token_prefix = f"{PREFIX}token:"
    looked = bad = 0
    problems: list[str] = []
    for name in client.scan_iter(match=f"{PREFIX}*", count=100):
        looked += 1
        if looked > SAMPLE_KEYS:
            break
        kind = client.type(name)
        if name.startswith(token_prefix):
            problem = _token_entry_problem(client, name, kind, codec)
        elif name == f"{PREFIX}invalidate":
            problem = None
        else:
            problem = None if kind in ("zset", "string", "none") else f"unexpected {kind}"
        if problem is not None:
            bad += 1
            if len(problems) < 3:
                problems.append(problem)
    if bad:
        return Check(
            "redis.keys",
            "fail",
            f"{bad} of {min(looked, SAMPLE_KEYS)} embedgate keys look wrong: "
            + "; ".join(problems),
            "another program writes under embedgate:*, or an old version: flush embedgate:v1:*",
        )
    return Check("redis.keys", "ok", f"{min(looked, SAMPLE_KEYS)} embedgate key(s) as expected")


def _token_entry_problem(client: Any, name: str, kind: str, codec: ValueCodec | None) -> str | None:
    if kind == "none":  # expired meanwhile
        return None
    if kind != "string":
        return f"a token key holds a {kind}"
    if client.pttl(name) <= 0:
        return "a token key without expiry"
    raw = client.get(name)
    if raw is None:  # expired meanwhile
        return None
    if str(raw).startswith(_SEALED_PREFIX):
        if codec is None or not codec.encrypts:
            return (
                "an encrypted token entry, and encryption is off here "
                "(EMBEDGATE_REDIS_ENCRYPT differs from the app's?)"
            )
        try:
            codec.decode(name, raw)
        except (ValueError, KeyError, TypeError):
            return "an encrypted token entry these keys cannot open (another secret?)"
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return "a token key that is not JSON"
    if not (isinstance(data, dict) and set(data) >= _TOKEN_FIELDS):
        return "a token key without the token fields"
    if codec is not None and codec.encrypts:
        return "a plain token entry, and encryption is on (the app refuses it)"
    return None


def report(checks: list[Check], *, as_json: bool, write: Callable[[str], Any]) -> int:
    """Print ``checks`` (lines, or one JSON object); returns the exit status."""
    healthy = all(c.status != "fail" for c in checks)
    if as_json:
        write(json.dumps({"ok": healthy, "checks": [asdict(c) for c in checks]}, indent=2))
        return 0 if healthy else 1
    width = max((len(c.name) for c in checks), default=0)
    for check in checks:
        line = f"{check.status.upper():<4}  {check.name:<{width}}  {check.detail}"
        if check.fix:
            line += f"\n      {'':<{width}}  fix: {check.fix}"
        write(line)
    failed = sum(c.status == "fail" for c in checks)
    write("all checks passed" if healthy else f"{failed} check(s) failed")
    return 0 if healthy else 1
