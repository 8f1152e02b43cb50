"""Pages, the hot path: which responses take the snippet (:meth:`PageRules.page_plan`), the
snippet itself, the headers of a page once it holds a token (:func:`headers_after_injection`)
and the token's timing as the browser sees it (:func:`client_timing`).

Every decision a response needs is taken in one pass over its raw headers, repeated
decisions come from small caches, and the snippet is assembled from markup rendered once
per mount point.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable

from .. import telemetry
from ..engine import Engine
from ..providers.browser import browser_policy
from ..token import EmbedToken
from .cache_policy import private_headers
from .headers import Headers, parse_content_type
from .injection import HtmlInjector, should_inject
from .token_block import extract_csp_nonce, json_for_html, new_binding, render_token_block
from .values import PagePlan, RawHeaders

# What decides whether a response takes the snippet (see injection.should_inject).
_DECISIVE = frozenset(
    {
        b"content-type",
        b"content-encoding",
        b"content-length",
        b"content-range",
        b"cache-control",
        b"content-disposition",
    }
)
_CSP = b"content-security-policy"
# JWTs and most opaque tokens: the same characters in JSON and in HTML, no escaping needed.
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]*")
_PLAIN_NONCE = re.compile(r"[A-Za-z0-9+/_=-]+")
_PLAIN_BINDING = re.compile(r"[A-Za-z0-9_-]{16,64}")
_PARTS_CACHE = 64  # mount points remembered by the snippet cache
_TOKEN_JSON_CACHE = 1024  # tokens whose JSON opening is remembered (re-rendered on change)


def injected_length(raw: Iterable[tuple[bytes, bytes]], added: int) -> int | None:
    """The length of a streamed body once injected: the app's ``Content-Length`` plus what
    the snippet adds, or None when the app declared none (the server frames it)."""
    for name, value in raw:
        if name.lower() == b"content-length":
            try:
                return int(value) + added
            except ValueError:
                return None
    return None


def headers_after_injection(
    raw: Iterable[tuple[bytes, bytes]], body_length: int | None, set_cookie: bytes | None = None
) -> RawHeaders:
    """The app's headers fit for its body once it carries a token: :func:`~embedgate.web.
    cache_policy.private_headers` with the new body's length (None: streamed, the server
    frames it) and session cookie."""
    return private_headers(raw, body_length=body_length, rewritten=True, set_cookie=set_cookie)


def client_timing(token: EmbedToken, now: float) -> tuple[int, int]:
    """``(expires_in, refresh_in)`` for the browser, in whole seconds.

    ``refresh_in`` rounds up: the script adds its own jitter on top, so it never comes back
    before the cache would hand out a fresh token (rounding down sent half of all refreshes
    early, to get the same token again and retry).
    """
    refresh_at = token.refresh_at or token.expires_at
    return max(0, int(token.expires_at - now)), max(1, math.ceil(refresh_at - now))


@functools.lru_cache(maxsize=256)
def _charset(content_type: bytes | None) -> str | None:
    return parse_content_type(content_type)[1].get("charset") or None


class PageRules:
    """The page rules of one :class:`~embedgate.web.gate.WebGate`: its configuration and
    page caches; no per-request state.

    ``token_path`` is the token endpoint's path under a mount point (the prefix included),
    ``script_url`` the loader's URL for a mount point, and ``session_tokens`` whether pages
    carry the session's token (see :attr:`WebGate.session_tokens
    <embedgate.web.gate.WebGate.session_tokens>`).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        session_tokens: bool,
        token_path: str,
        script_url: Callable[[str], str],
    ) -> None:
        self.engine = engine
        self.config = engine.config
        self.session_tokens = session_tokens
        self.token_path = token_path
        self._script_url = script_url
        self._snippet_parts: dict[str, tuple[str, str, str, str]] = {}
        self._token_json: dict[tuple[str, float], str] = {}
        self._decide = functools.lru_cache(maxsize=512)(self._should_inject)

    def page_plan(self, method: str, status: int, raw: RawHeaders) -> PagePlan | None:
        """A plan to inject into this response, or None to pass it through untouched.

        One pass over the headers; the verdict of :func:`~embedgate.web.injection.
        should_inject` is cached per combination of the headers it looks at.
        """
        if not self.config.inject or not 200 <= status < 300:
            return None
        decisive: list[tuple[bytes, bytes]] = []
        csp: list[bytes] = []
        content_type: bytes | None = None
        length_seen = False
        for name, value in raw:
            key = name.lower()
            if key in _DECISIVE:
                if key == b"content-length":
                    if length_seen:
                        continue
                    length_seen = True
                    decisive.append((key, self._length_class(value)))
                    continue
                if key == b"content-type" and content_type is None:
                    content_type = value
                decisive.append((key, value))
            elif key == _CSP:
                csp.append(value)
        if not self._decide(method.upper() == "HEAD", status, tuple(decisive)):
            return None
        injector = HtmlInjector(charset=_charset(content_type), limit=self.config.max_inject_bytes)
        return PagePlan(raw, injector, csp)

    def _length_class(self, value: bytes) -> bytes:
        # All should_inject asks of Content-Length: is it a number within the limit?
        try:
            return b"0" if int(value) <= self.config.max_inject_bytes else b"over"
        except ValueError:
            return b"over"

    def _should_inject(
        self, head: bool, status: int, decisive: tuple[tuple[bytes, bytes], ...]
    ) -> bool:
        return should_inject(
            "HEAD" if head else "GET", status, Headers(decisive), limit=self.config.max_inject_bytes
        )

    @functools.cached_property
    def _allow_json(self) -> str:
        # The profile's browser policy: the same for every page of this gate.
        return json_for_html(browser_policy(self.engine.profile).data())

    def snippet(
        self,
        root: str,
        token: EmbedToken | None,
        nonce: str | None = None,
        *,
        binding: str | None = None,
    ) -> str:
        """See :meth:`WebGate.snippet <embedgate.web.gate.WebGate.snippet>`."""
        parts = self._snippet_parts.get(root)
        if parts is None:
            parts = self._render_parts(root)
        opening, endpoint_json, script, closing = parts
        bind = binding if binding is not None and _PLAIN_BINDING.fullmatch(binding) else None
        tail = f',"bind":"{bind or new_binding()}","allow":{self._allow_json}}}'
        data = f'{{"token":null,"endpoint":{endpoint_json}{tail}'
        if not self.session_tokens:
            telemetry.injection(True, "no_session_token")
            data = f'{{"token":null,"session":false,"endpoint":{endpoint_json}{tail}'
        elif token is None:
            telemetry.injection(True, "no_token")
        else:
            now = self.engine.clock.now()
            telemetry.injection(True, "token")
            telemetry.token_served(token.expires_at - now, "page")
            _, refresh_in = client_timing(token, now)
            data = (
                f'{self._token_opening(token)}"refresh_in":{refresh_in},'
                f'"server_time":{int(now)},"endpoint":{endpoint_json}{tail}'
            )
        if not nonce:
            return f"{opening}{data}{script}{closing}"
        if _PLAIN_NONCE.fullmatch(nonce):  # what CSP allows a nonce to be: nothing to escape
            return f'{opening}{data}{script} nonce="{nonce}"{closing}'
        return render_token_block(
            json.loads(data),
            self._script_url(root),
            nonce,
            endpoint=root + self.token_path,
        )

    def _token_opening(self, token: EmbedToken) -> str:
        """``{"token":...,"expires_at":...,``: rendered once per token, not per page (the
        escaping check reads the whole token)."""
        key = (token.token, token.expires_at)
        opening = self._token_json.get(key)
        if opening is None:
            value = token.token
            quoted = f'"{value}"' if _PLAIN_TOKEN.fullmatch(value) else json_for_html(value)
            opening = f'{{"token":{quoted},"expires_at":{int(token.expires_at)},'
            if len(self._token_json) >= _TOKEN_JSON_CACHE:
                self._token_json.clear()
            self._token_json[key] = opening
        return opening

    def _render_parts(self, root: str) -> tuple[str, str, str, str]:
        # Split render_token_block's own markup where the data and the nonce go. Attribute
        # values never hold a bare '"' (they are escaped), so the nonce attribute of a
        # rendering with one is found exactly, whatever the mount point.
        endpoint = root + self.token_path
        script_url = self._script_url(root)
        bare = render_token_block(None, script_url, None, endpoint=endpoint)
        with_nonce = render_token_block(None, script_url, "0", endpoint=endpoint)
        data_at = bare.index(">null</script>") + 1
        nonce_at = with_nonce.index(' nonce="0"')
        parts = (
            bare[:data_at],
            json_for_html(endpoint),
            bare[data_at + len("null") : nonce_at],
            bare[nonce_at:],
        )
        if len(self._snippet_parts) < _PARTS_CACHE:
            self._snippet_parts[root] = parts
        return parts

    def plan_snippet(
        self, root: str, plan: PagePlan, token: EmbedToken | None, binding: str | None = None
    ) -> bytes:
        """The snippet for a planned page, with the nonce its CSP allows scripts."""
        nonce = extract_csp_nonce([(_CSP, v) for v in plan.csp]) if plan.csp else None
        return self.snippet(root, token, nonce, binding=binding).encode("ascii")
