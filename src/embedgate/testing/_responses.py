"""Reading the token a response carries (a page or an endpoint answer) and checking it."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from ..clock import SYSTEM_CLOCK
from ..config import Config
from ..engine import live_engines
from ..errors import ConfigurationError, EmbedgateError
from ..keys import KeySet, SigningKey, keyset_from_config
from ..verify import verify
from ..web.token_block import TOKEN_BLOCK_ID
from ._apps import find_engine

_BLOCK = re.compile(
    r'<script type="application/json" id="' + re.escape(TOKEN_BLOCK_ID) + r'"[^>]*>(.*?)</script>',
    re.DOTALL,
)
# verify() checks exp/nbf/iat against the real time; the toolkit checks them against
# embedgate's clock instead (the manual clock when a test moves it).
_NO_TIME_CHECKS = 10.0**10


class ClaimsSource(Protocol):
    """What knows the claims behind an opaque token (the fake providers)."""

    def claims_of(self, token: str) -> dict[str, Any] | None: ...


def _text(response: Any) -> tuple[str, str]:
    """``(body, content type)`` of a Starlette/FastAPI (httpx), Flask (Werkzeug) or Django
    test response, or of a plain ``str``/``bytes`` body."""
    if isinstance(response, bytes):
        response = response.decode("utf-8")
    if isinstance(response, str):
        kind = "application/json" if response.lstrip().startswith("{") else "text/html"
        return response, kind
    headers = getattr(response, "headers", None)
    kind = str(headers.get("content-type", "") if headers is not None else "")
    if callable(getattr(response, "get_data", None)):  # Werkzeug / Flask
        return str(response.get_data(as_text=True)), kind
    if hasattr(response, "text") and not callable(response.text):  # httpx, requests
        return str(response.text), kind
    content = getattr(response, "content", None)  # Django
    if isinstance(content, bytes):
        charset = getattr(response, "charset", None) or "utf-8"
        return content.decode(charset), kind
    raise TypeError(f"cannot read the body of a {type(response).__name__}")


def embed_data(response: Any) -> dict[str, Any] | None:
    """The embedgate data of a response: an endpoint answer's JSON object, or a page's
    token block (its ``token`` is ``null`` when issuance failed). Fails the test when
    the response carries neither, or a page carries more than one block."""
    body, kind = _text(response)
    if "json" in kind:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise AssertionError("the answer is not a JSON object")
        if "token" not in data:
            raise AssertionError(f"the answer carries no token: {data}")
        return data
    blocks = _BLOCK.findall(body)
    if not blocks:
        raise AssertionError("the page carries no embedgate token block")
    if len(blocks) > 1:
        raise AssertionError(f"the page carries {len(blocks)} token blocks, expected one")
    found = json.loads(blocks[0])
    if found is not None and not isinstance(found, dict):
        raise AssertionError("the token block is not a JSON object")
    return found


def _bare_token(response: Any) -> str | None:
    if isinstance(response, str) and response and not re.search(r"[<{\s]", response):
        return response
    return None


def extract_token(response: Any) -> str:
    """The token of a page (its data block) or of an endpoint answer (or the token itself,
    given as a string)."""
    bare = _bare_token(response)
    if bare is not None:
        return bare
    data = embed_data(response)
    if data is None or (data.get("token") is None and data.get("session") is not False):
        raise AssertionError("the page's token block holds no token: issuance failed")
    token = data.get("token")
    if not isinstance(token, str) or not token:
        raise AssertionError("the response carries no token (a provider without session tokens?)")
    return token


def _keys(keys: KeySet | SigningKey | str | bytes) -> KeySet:
    if isinstance(keys, KeySet):
        return keys
    if isinstance(keys, SigningKey):
        return KeySet([keys])
    return KeySet([SigningKey.hmac(keys)])


def token_claims(
    token: str,
    *,
    target: Any = None,
    keys: KeySet | SigningKey | str | bytes | None = None,
    audience: str | None = None,
    issuer: str | None = None,
) -> dict[str, Any]:
    """The verified claims of a JWT embedgate signed: with ``keys`` (a KeySet, a key or
    an HMAC secret), else the keys of ``target``'s engine (an Engine, an app, a middleware,
    a test client), else those of the running Django project, of the engines alive in this
    process and of the ``EMBEDGATE_*`` environment (the first that verifies it). Expiry and
    not-before are checked against the engine's clock (embedgate's system clock, which the
    manual clock fixture moves, when there is no engine)."""
    if keys is not None:
        return _checked(
            token, _keys(keys), None, SYSTEM_CLOCK.now(), audience=audience, issuer=issuer
        )
    if target is not None:
        engine = find_engine(target)
        keyset = keyset_from_config(engine.config)
        return _checked(
            token, keyset, engine.config, engine.clock.now(), audience=audience, issuer=issuer
        )
    # No app named: the keys of the Django project, of the engines alive in this process,
    # of the environment; the first that verifies the token wins.
    failures: list[str] = []
    for config, now in _candidates():
        try:
            keyset = keyset_from_config(config)
        except ConfigurationError:
            continue
        try:
            return _checked(token, keyset, config, now, audience=audience, issuer=issuer)
        except AssertionError as error:
            failures.append(str(error))
    if not failures:
        raise AssertionError("no embedgate keys found: pass app= or keys=")
    raise AssertionError(failures[0])


def _candidates() -> Iterator[tuple[Config, float]]:
    seen: set[int] = set()
    engines = list(live_engines())
    django_conf = sys.modules.get("django.conf")
    if (
        django_conf is not None
        and django_conf.settings.configured
        and "embedgate.integrations.django" in django_conf.settings.INSTALLED_APPS
    ):
        engines.insert(0, find_engine(None))
    for engine in reversed(engines):  # the newest first: the app under test, usually
        if id(engine.config) not in seen:
            seen.add(id(engine.config))
            yield engine.config, engine.clock.now()
    try:
        yield Config.load(), SYSTEM_CLOCK.now()
    except ConfigurationError:
        return


def _checked(
    token: str,
    keyset: KeySet,
    config: Config | None,
    now: float,
    *,
    audience: str | None,
    issuer: str | None,
) -> dict[str, Any]:
    aud = audience or (config.audience if config is not None else "embedgate")
    iss = issuer or (config.issuer if config is not None else "embedgate")
    try:
        claims = verify(token, keyset, audience=aud, issuer=iss, leeway=_NO_TIME_CHECKS)
    except EmbedgateError as error:
        raise AssertionError(f"the token does not verify: {error}") from None
    leeway = config.leeway if config is not None else 10.0
    if claims.get("exp", now + 1) <= now - leeway:
        raise AssertionError(f"the token expired {int(now - claims['exp'])} s ago")
    if claims.get("nbf", now) > now + leeway:
        raise AssertionError("the token is not valid yet (nbf in the future)")
    return claims


def assert_embed_token(
    response: Any,
    *,
    sub: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    tenant: str | None = None,
    roles: Sequence[str] | None = None,
    claims: Mapping[str, Any] | None = None,
    app: Any = None,
    keys: KeySet | SigningKey | str | bytes | None = None,
    provider: ClaimsSource | None = None,
    audience: str | None = None,
    issuer: str | None = None,
) -> dict[str, Any]:
    """Extract the token of ``response`` (a page or an endpoint answer), verify it and
    check what it says; returns its claims.

    A JWT is verified with ``keys``, else ``app``'s engine, else the environment's
    settings. An opaque token (Toucan) is looked up in ``provider``, the fake that issued
    it. ``attributes`` and ``claims`` must be contained in the token's (other entries may
    be there too); ``roles`` must equal the token's.
    """
    token = extract_token(response)
    if provider is not None:
        found = provider.claims_of(token)
        if found is None:
            raise AssertionError(f"{type(provider).__name__} did not issue this token")
    else:
        found = token_claims(token, target=app, keys=keys, audience=audience, issuer=issuer)
    problems: list[str] = []
    if sub is not None and found.get("sub") != sub:
        problems.append(f"sub is {found.get('sub')!r}, expected {sub!r}")
    if tenant is not None and found.get("tenant") != tenant:
        problems.append(f"tenant is {found.get('tenant')!r}, expected {tenant!r}")
    if roles is not None and list(found.get("roles") or []) != list(roles):
        problems.append(f"roles are {found.get('roles')!r}, expected {list(roles)!r}")
    # embedgate's own layout nests user attributes under "attributes"; provider layouts
    # (Tableau, Metabase SSO...) put them among the top-level claims.
    nested = found.get("attributes")
    held = nested if isinstance(nested, dict) else {}
    for name, value in (attributes or {}).items():
        source = held if name in held else found
        if name not in source:
            problems.append(f"attribute {name!r} is missing (has {sorted(held or found)})")
        elif source[name] != value:
            problems.append(f"attribute {name!r} is {source[name]!r}, expected {value!r}")
    for name, value in (claims or {}).items():
        if found.get(name) != value:
            problems.append(f"claim {name!r} is {found.get(name)!r}, expected {value!r}")
    if problems:
        raise AssertionError("embed token: " + "; ".join(problems))
    return found
