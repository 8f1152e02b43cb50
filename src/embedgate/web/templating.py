"""The template helpers' logic, for any framework: ``embed_token()``, ``embed_snippet()``,
``embed_script()``, ``embed_binding()``, plus what a page needs once a helper or the
injection put a token in it.

Adapters (Flask, Starlette, Django) bind one :class:`PageHelpers` to each request and mark
the returned HTML safe. Helpers never raise into a page: an anonymous visitor gets ``""``
(logged at debug), a failure gets ``""`` or a token-less snippet (logged as a warning that
names the error, never a secret or a token).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from .. import telemetry
from ..engine import Engine
from ..errors import ConfigurationError, EmbedgateError, IssuerError, PrincipalError
from ..principal import Principal
from ..providers.browser import BIND_ATTRIBUTE
from ..providers.html import BIND_OPTION
from ..token import EmbedToken
from .gate import WebGate
from .headers import Headers
from .injection import HtmlInjector
from .token_block import extract_csp_nonce, new_binding
from .values import PagePlan, SessionDecision, WebRequest

if TYPE_CHECKING:
    from markupsafe import Markup

log = logging.getLogger("embedgate")

PrincipalSource = Callable[[], "Principal | None"]
SessionSource = Callable[[], SessionDecision]
NonceSource = Callable[[], "str | None"]
BindingSource = Callable[[], str]

_UNSET: Any = object()
_NO_NEW_COOKIE = SessionDecision("")  # page_headers() only reads set_cookie


def snippet_options(options: Mapping[str, Any], nonce: str | None) -> dict[str, str]:
    """Template keyword arguments as the string options ``profile.snippet`` takes; the
    page's CSP nonce is added unless the template gave one."""
    out: dict[str, str] = {}
    for name, value in options.items():
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, (int, float)):
            out[name] = str(value)
        else:
            out[name] = value  # a str, or a mistake the profile names
    if nonce and "nonce" not in out:
        out["nonce"] = nonce
    return out


def on_event_loop() -> bool:
    """Whether this code runs on an asyncio event loop's thread (a template rendered in an
    async view): blocking I/O here would stall every other request of the loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Deferred:
    """Helper calls made where they cannot wait (a template rendered on the event loop):
    each renders a placeholder, replaced once the response is complete by the async
    helper's output (:meth:`aresolve`, called by the middleware)."""

    def __init__(self) -> None:
        self._marker = "embedgate-deferred-" + secrets.token_hex(8)
        self._calls: list[Callable[[], Awaitable[str]]] = []
        self.enabled = False  # set by an adapter that resolves them (an async middleware)

    @property
    def pending(self) -> bool:
        return bool(self._calls)

    def add(self, call: Callable[[], Awaitable[str]]) -> str:
        """Queue ``call``; returns its placeholder (letters, digits and dashes only, so it
        survives autoescaping in text and attribute values alike)."""
        self._calls.append(call)
        return f"{self._marker}-{len(self._calls) - 1}-"

    async def aresolve(self, body: bytes) -> bytes:
        """``body`` with every placeholder replaced (in the order the template made them)."""
        calls, self._calls = self._calls, []
        for index, call in enumerate(calls):
            html = await call()
            body = body.replace(f"{self._marker}-{index}-".encode(), html.encode())
        return body


class PageHelpers:
    """The helpers of one request. Principal, session and tokens are looked up once.

    ``principal`` returns who is logged in (``None``: anonymous); ``session`` the request's
    session decision (default: embedgate's cookie, through the gate); ``nonce`` the page's
    CSP nonce; ``binding`` the response's binding value (default: one of its own, see
    :func:`~embedgate.web.token_block.request_binding`). Not thread-safe: one object per request.
    """

    def __init__(
        self,
        gate: WebGate,
        request: WebRequest,
        *,
        principal: PrincipalSource,
        session: SessionSource | None = None,
        nonce: NonceSource | None = None,
        binding: BindingSource | None = None,
    ) -> None:
        self.gate = gate
        self._binding_source = binding
        self._binding: str | None = None
        self.request = request
        self._principal_source = principal
        self._session_source = session
        self._nonce_source = nonce
        self._principal: Principal | None = _UNSET
        self._decision: SessionDecision | None = None
        self._tokens: dict[str | None, EmbedToken | None] = {}
        self._refused = False  # the attribute policy refused the principal
        self.carries_token = False  # the page body holds a token: it needs no-store headers
        self.script_rendered = False
        self.cookie_delivered = False
        self.deferred = Deferred()

    @property
    def engine(self) -> Engine:
        return self.gate.engine

    # -- lookups, once per request ---------------------------------------------------------

    def principal(self) -> Principal | None:
        """Who the page is for, or None. A refused principal is logged and treated as None."""
        if self._principal is _UNSET:
            try:
                self._principal = self._principal_source()
            except PrincipalError as error:
                log.warning(
                    "embedgate: no token for this user, principal refused (%s)", error.field
                )
                self._principal = None
        return self._principal

    def set_principal(self, principal: Principal | None) -> None:
        """Record a principal resolved elsewhere (an async adapter), so no lookup runs here."""
        self._principal = principal

    def session(self) -> SessionDecision:
        if self._decision is None:
            if self._session_source is not None:
                self._decision = self._session_source()
            else:
                self._decision = self.gate.session(self.request)
        return self._decision

    def use_session(self, decision: SessionDecision) -> None:
        """Record the session an async adapter chose, so the helpers mint under it."""
        self._decision = decision

    @property
    def decision(self) -> SessionDecision | None:
        """The session used so far in this request, if any."""
        return self._decision

    def nonce(self) -> str | None:
        return self._nonce_source() if self._nonce_source is not None else None

    @property
    def binding(self) -> str:
        """This response's binding value (the data block's ``bind``)."""
        if self._binding is None:
            source = self._binding_source
            self._binding = source() if source is not None else new_binding()
        return self._binding

    def remember(self, resource: str | None, token: EmbedToken | None) -> None:
        """Keep a token fetched elsewhere (an async dependency) for the helpers to reuse."""
        self._tokens[resource] = token

    def get_token(self, resource: str | None, helper: str) -> EmbedToken | None:
        """The session's token for ``resource``; None (logged) when anonymous or failing,
        and for ``resource=None`` when the provider has no session token."""
        principal = self._needs_mint(resource, helper)
        if principal is None:
            return self._tokens.get(resource)
        token: EmbedToken | None = None
        session_id = self.session().session_id
        self.gate.settle_user(session_id, principal)
        try:
            token = self.engine.get_token(
                principal, session_id, resource, deadline=self.engine.config.page_deadline
            )
        except EmbedgateError as error:
            self._failed(helper, error)
        self._tokens[resource] = token
        return token

    async def aget_token(self, resource: str | None, helper: str) -> EmbedToken | None:
        """Async face of :meth:`get_token` (the principal must be resolvable without I/O,
        or set with :meth:`set_principal` first)."""
        principal = self._needs_mint(resource, helper)
        if principal is None:
            return self._tokens.get(resource)
        token: EmbedToken | None = None
        session_id = self.session().session_id
        await self.gate.asettle_user(session_id, principal)
        try:
            token = await self.engine.aget_token(
                principal, session_id, resource, deadline=self.engine.config.page_deadline
            )
        except EmbedgateError as error:
            self._failed(helper, error)
        self._tokens[resource] = token
        return token

    def _needs_mint(self, resource: str | None, helper: str) -> Principal | None:
        """The principal to mint ``resource``'s token for, or None when the answer is
        already known (kept from earlier in the page, anonymous, or no session token)."""
        if resource in self._tokens:
            return None
        principal = self.principal()
        if principal is None:
            log.debug("embedgate: %s rendered nothing: nobody is logged in", helper)
            return None
        if resource is None and self._no_session_token(principal, helper):
            self._tokens[None] = None
            return None
        return principal

    def _no_session_token(self, principal: Principal, helper: str) -> bool:
        """True when the provider has no session token: nothing to mint, and nothing to
        warn about (a debug line). A principal the attribute policy refuses is recorded
        and logged as minting would have."""
        try:
            if self.gate.needs_session_token(principal):
                return False
        except PrincipalError as error:
            self._failed(helper, error)
        else:
            log.debug("embedgate: %s: the provider has no session token", helper)
        return True

    def _failed(self, helper: str, error: EmbedgateError) -> None:
        self._refused = self._refused or isinstance(error, PrincipalError)
        _log_failure(helper, error)

    # -- the helpers -------------------------------------------------------------------------

    def embed_token(self) -> str:
        """The current user's token, or "" (anonymous, a provider without session tokens,
        or issuance failed)."""
        token = self.get_token(None, "embed_token()")
        if token is None:
            return ""
        self.carries_token = True
        return token.token

    def embed_snippet(self, kind: str, resource: str | None = None, **options: Any) -> str:
        """The configured provider's markup embedding ``resource`` (escaped by the profile)."""
        profile = self.engine.profile
        render = getattr(profile, "snippet", None)
        if not callable(render):
            log.error("embedgate: embed_snippet(): provider %r renders no markup", profile.name)
            return ""
        try:
            resource_for = getattr(profile, "resource_for", None)
            wanted = resource_for(kind, resource) if callable(resource_for) else resource
        except EmbedgateError as error:
            _log_failure("embed_snippet()", error)
            return ""
        token = self.get_token(wanted, "embed_snippet()")
        if token is None:
            return ""
        try:
            given = snippet_options(options, self.nonce())
            given[BIND_OPTION] = self.binding  # never the template's: only this response's
            html = render(kind, resource, token, given)
        except EmbedgateError as error:
            _log_failure("embed_snippet()", error)
            return ""
        self.carries_token = True
        return str(html)

    def embed_binding(self) -> str:
        """``data-embedgate-bind="…"``: the attribute that lets ``embedgate.js`` write this
        page's token into an element the template writes by hand (with
        ``data-embedgate-token``). Markup from anywhere else cannot carry it: the value is
        random and changes with every response."""
        return f'{BIND_ATTRIBUTE}="{self.binding}"'

    def embed_script(self) -> str:
        """The token data block and the ``embedgate.js`` loader tag with the CSP nonce.

        The page is then left alone by the injection (it already carries the block). A
        failed issuance renders ``null``: the script fetches a token from the endpoint. A
        provider without session tokens renders ``"session": false`` and the loader: the
        script refreshes only the page's resource-bound tokens.
        """
        if self.script_rendered:
            return ""
        if self.principal() is None:
            log.debug("embedgate: embed_script() rendered nothing: nobody is logged in")
            return ""
        token = self.get_token(None, "embed_script()")
        if self._refused:
            return ""
        html = self._snippet(token, self.nonce())
        self.script_rendered = True
        self.carries_token = True
        return html

    # -- async faces: the same output, minting through the async token service -----------

    async def aembed_token(self) -> str:
        """Async face of :meth:`embed_token`."""
        await self.aget_token(None, "embed_token()")
        return self.embed_token()

    async def aembed_snippet(self, kind: str, resource: str | None = None, **options: Any) -> str:
        """Async face of :meth:`embed_snippet`."""
        resource_for = getattr(self.engine.profile, "resource_for", None)
        try:
            wanted = resource_for(kind, resource) if callable(resource_for) else resource
        except EmbedgateError:
            wanted = _UNSET  # embed_snippet logs it
        if wanted is not _UNSET:
            await self.aget_token(wanted, "embed_snippet()")
        return self.embed_snippet(kind, resource, **options)

    async def aembed_script(self) -> str:
        """Async face of :meth:`embed_script`."""
        if not self.script_rendered and self.principal() is not None:
            await self.aget_token(None, "embed_script()")
        return self.embed_script()

    # -- finishing the page ----------------------------------------------------------------

    def page_snippet(self, response_headers: Headers) -> str | None:
        """What the injection inserts into this page, or None (anonymous visitor). The
        loader carries the response's CSP nonce, else the app's (``nonce()``)."""
        if self.principal() is None:
            telemetry.injection(False, "anonymous")
            return None
        token = self.get_token(None, "injection")
        if self._refused:
            telemetry.injection(False, "principal_refused")
            return None
        return self._snippet(token, extract_csp_nonce(response_headers) or self.nonce())

    async def apage_snippet(self, response_headers: Headers) -> str | None:
        """Async face of :meth:`page_snippet`."""
        if self.principal() is None:
            telemetry.injection(False, "anonymous")
            return None
        token = await self.aget_token(None, "injection")
        if self._refused:
            telemetry.injection(False, "principal_refused")
            return None
        return self._snippet(token, extract_csp_nonce(response_headers) or self.nonce())

    def page_headers(
        self, headers: Headers, body_length: int | None, *, injected: bool
    ) -> Headers | None:
        """The response headers once the body carries a token (``no-store``, ``Vary:
        Cookie``, the session cookie if new), or None when nothing has to change."""
        if not (injected or self.carries_token):
            return None
        decision = self._decision
        if decision is None or self.cookie_delivered:
            decision = _NO_NEW_COOKIE
        self.cookie_delivered = True
        return self.gate.page_headers(headers, body_length, decision)

    def _snippet(self, token: EmbedToken | None, nonce: str | None) -> str:
        # The same markup the middleware injects, with the nonce chosen here.
        return self.gate.snippet(self.request.root, token, nonce, binding=self.binding)


def _log_failure(helper: str, error: EmbedgateError) -> None:
    if isinstance(error, IssuerError):
        # Per page, so debug: the breaker logs the provider's state changes once each.
        log.debug(
            "embedgate: %s rendered without a token, the provider failed (%s: %s)",
            helper,
            error.provider or "issuer",
            error.code,
        )
    elif isinstance(error, PrincipalError):
        log.warning("embedgate: %s rendered nothing, principal refused (%s)", helper, error.field)
    elif isinstance(error, ConfigurationError):
        # A template mistake (unknown kind or option): the message names it, holds no secret.
        log.error("embedgate: %s rendered nothing: %s", helper, error)
    else:
        log.warning("embedgate: %s rendered nothing (%s)", helper, type(error).__name__)


def page_injector(
    gate: WebGate, method: str, status: int, headers: Headers, body: Callable[[], bytes]
) -> HtmlInjector | None:
    """An injector holding a complete in-memory body (read with ``body()`` only for an
    HTML page) when the snippet should go into it, else None (no insertion point, already
    carrying the snippet, over the size limit, not a page)."""
    plan = gate.page_plan(method, status, headers.raw)
    return None if plan is None else fed_injector(plan, body())


def fed_injector(plan: PagePlan, body: bytes) -> HtmlInjector | None:
    """The plan's injector holding the complete ``body`` when the block has a place in it,
    else None (over the size limit, no insertion point)."""
    injector = plan.injector
    injector.feed(body)
    if injector.passthrough or injector.insertion_point() is None:
        telemetry.injection(False, "too_large" if injector.passthrough else "no_insertion_point")
        return None
    return injector


def trusted_markup(html: str) -> Markup:
    """Mark HTML embedgate rendered itself as safe, for the Jinja adapters (markupsafe comes
    with Jinja, so it is imported here only when they call).

    Only for the helpers' output: ``profile.snippet`` and ``render_token_block`` escape
    every value they put into markup, so autoescaping it again would break it.
    """
    from markupsafe import Markup

    return Markup(html)  # noqa: S704 - escaped by its renderer, see the docstring
