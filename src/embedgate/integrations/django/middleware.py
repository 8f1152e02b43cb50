"""The Django middleware: the token endpoint, script and JWKS, and the token injected into
HTML pages, over Django's own request/response objects (WSGI and ASGI alike)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse

from ... import telemetry
from ...errors import PrincipalError
from ...principal import Principal
from ...web.cache_policy import private_headers
from ...web.endpoint import aanswer_token_request, answer_token_request
from ...web.headers import Headers
from ...web.injection import HtmlInjector
from ...web.templating import PageHelpers, page_injector
from ...web.token_request import MAX_BODY
from ...web.values import SessionDecision, WebRequest, WebResponse
from .principal import django_principal
from .runtime import (
    REQUEST_ATTRIBUTE,
    DjangoState,
    apply_headers,
    get_state,
    response_headers,
    to_django,
    web_request,
)

GetResponse = Callable[[HttpRequest], Any]
_UNKNOWN: Any = object()


class EmbedgateMiddleware:
    """Put it after ``AuthenticationMiddleware``. Tokens are for ``request.user`` when
    authenticated; subclass and override :meth:`principal` to map users differently."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        get_state()  # validate the settings at start-up, not on the first page

    def principal(self, request: HttpRequest) -> Principal | None:
        """Who the tokens are for (runs database queries: sync code only)."""
        return django_principal(getattr(request, "user", None))

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        state = get_state()
        web = web_request(request)
        route = state.gate.route(web)
        if route is not None:
            started = telemetry.start()
            answer = self._serve(route, web, request, state)
            telemetry.endpoint_answered(route, answer.status, started)
            return to_django(answer)
        page = self._page(request, web, state)
        page.deferred.enabled = True  # an async view's tags, rendered on its loop
        response = self.get_response(request)
        if page.deferred.pending and not response.streaming:
            page.principal()
            response.content = async_to_sync(page.deferred.aresolve)(bytes(response.content))
        if self._may_change_user(response, web, state):
            self._check_user(request, web, state)
        if response.streaming or request.method == "HEAD":
            if _may_carry_token(response, page, state) and self._logged_in(page):
                apply_headers(response, Headers(private_headers(response_headers(response))))
            if response.streaming:
                return response
        headers = response_headers(response)
        injector = self._injector(request, response, headers, state)
        # A page whose template wrote the block (anywhere, maybe after </head>) takes no other.
        if page.script_rendered:
            injector = None
        snippet = page.page_snippet(headers) if injector is not None else None
        return self._rewrite(response, page, injector, snippet)

    async def __acall__(self, request: HttpRequest) -> Any:
        state = get_state()
        web = web_request(request)
        route = state.gate.route(web)
        if route is not None:
            started = telemetry.start()
            answer = await self._aserve(route, web, request, state)
            telemetry.endpoint_answered(route, answer.status, started)
            return to_django(answer)
        page = self._page(request, web, state)
        page.deferred.enabled = True  # tags rendered on the loop are filled in below
        get_response: Callable[[HttpRequest], Awaitable[Any]] = self.get_response
        response = await get_response(request)
        if page.deferred.pending and not response.streaming:
            # Tags rendered in an async view left placeholders: fill them in, async.
            await sync_to_async(page.principal)()  # request.user and groups hit the database
            response.content = await page.deferred.aresolve(bytes(response.content))
        if self._may_change_user(response, web, state):
            await sync_to_async(self._check_user)(request, web, state)  # request.user: database
        if response.streaming or request.method == "HEAD":
            if _may_carry_token(response, page, state) and await sync_to_async(self._logged_in)(
                page
            ):
                apply_headers(response, Headers(private_headers(response_headers(response))))
            if response.streaming:
                return response
        headers = response_headers(response)
        injector = self._injector(request, response, headers, state)
        snippet = None
        if page.script_rendered:
            injector = None
        if injector is not None:
            await sync_to_async(page.principal)()  # request.user and groups hit the database
            snippet = await page.apage_snippet(headers)
        return self._rewrite(response, page, injector, snippet)

    # -- who the session's tokens belong to -------------------------------------------------

    def _may_change_user(self, response: HttpResponse, web: WebRequest, state: DjangoState) -> bool:
        """A redirect or a page of a session holding tokens: after a log-in or a log-out."""
        status = response.status_code
        html = str(response.get("Content-Type", "")).startswith("text/html")
        return (300 <= status < 400 or html) and state.gate.watches(_session_id(web, state))

    def _check_user(
        self, request: HttpRequest, web: WebRequest, state: DjangoState, principal: Any = _UNKNOWN
    ) -> None:
        """Purge the session's tokens when the user they were minted for has changed or
        logged out: no logout call to remember."""
        session_id = _session_id(web, state)
        if not state.gate.watches(session_id):
            return
        if principal is _UNKNOWN:
            try:
                principal = state.engine.principal_for(self.principal(request))
            except PrincipalError:
                return
        state.gate.settle_user(session_id, principal)

    # -- pages -----------------------------------------------------------------------------

    def _logged_in(self, page: PageHelpers) -> bool:
        """Whether tokens are minted for this request's user (runs database queries)."""
        return page.carries_token or page.principal() is not None

    def _page(self, request: HttpRequest, web: WebRequest, state: DjangoState) -> PageHelpers:
        def nonce() -> str | None:
            value = getattr(request, "csp_nonce", None)  # django-csp's convention
            return None if value is None else str(value)

        page = PageHelpers(
            state.gate,
            web,
            principal=lambda: state.engine.principal_for(self.principal(request)),
            nonce=nonce,
        )
        setattr(request, REQUEST_ATTRIBUTE, page)
        return page

    def _injector(
        self, request: HttpRequest, response: HttpResponse, headers: Headers, state: DjangoState
    ) -> HtmlInjector | None:
        return page_injector(
            state.gate,
            request.method or "GET",
            response.status_code,
            headers,
            lambda: bytes(response.content),
        )

    def _rewrite(
        self,
        response: HttpResponse,
        page: PageHelpers,
        injector: HtmlInjector | None,
        snippet: str | None,
    ) -> HttpResponse:
        injected = False
        if injector is not None:
            body = injector.finish(snippet)
            if injector.injected:
                response.content = body
                injected = True
        headers = page.page_headers(
            response_headers(response), len(response.content), injected=injected
        )
        if headers is not None:
            apply_headers(response, headers)
        return response

    # -- embedgate's routes ----------------------------------------------------------------

    def _early(self, route: str, web: WebRequest, state: DjangoState) -> WebResponse | None:
        """The answer that needs no user: the script, the JWKS."""
        if route == "script":
            return state.gate.script_response(web)
        if route == "jwks":
            return state.gate.jwks_response(web)
        return None

    def _serve(
        self, route: str, web: WebRequest, request: HttpRequest, state: DjangoState
    ) -> WebResponse:
        early = self._early(route, web, state)
        if early is not None:
            return early
        gate, user = state.gate, self.principal(request)
        return answer_token_request(gate, web, _body(request), user, lambda: gate.session(web))

    async def _aserve(
        self, route: str, web: WebRequest, request: HttpRequest, state: DjangoState
    ) -> WebResponse:
        early = self._early(route, web, state)
        if early is not None:
            return early
        gate, user = state.gate, await sync_to_async(self.principal)(request)

        async def session() -> SessionDecision:
            return gate.session(web)

        # Django's ASGI handler has spooled the body.
        return await aanswer_token_request(gate, web, _body(request), user, session)


def _session_id(web: WebRequest, state: DjangoState) -> str | None:
    cookies = web.headers.get_all(b"cookie")
    header = b"; ".join(cookies).decode("latin-1") if cookies else None
    return state.gate.known_session_id(header)


def _may_carry_token(response: HttpResponse, page: PageHelpers, state: DjangoState) -> bool:
    """A streamed page (rendered as it is sent: a template helper may yet put a token in
    it) or a HEAD whose GET would get one: private if the user is logged in."""
    if page.carries_token:
        return True
    headers = response_headers(response)
    if response.streaming:
        content_type = (headers.get_str("content-type") or "").split(";")[0].strip().lower()
        return content_type in ("text/html", "application/xhtml+xml")
    return state.gate.page_plan("GET", response.status_code, headers.raw) is not None


def _read_body(request: HttpRequest) -> bytes:
    """At most ``MAX_BODY + 1`` bytes of the body; ``request.body`` would read it all (up
    to ``DATA_UPLOAD_MAX_MEMORY_SIZE``). A body something already read is cut the same."""
    if hasattr(request, "_body"):  # read already (request.body): reading again would raise
        return bytes(request._body[: MAX_BODY + 1])
    data: bytes = request.read(MAX_BODY + 1)
    return data


def _body(request: HttpRequest) -> bytes:
    """A token request's body, read bounded (empty unless POST)."""
    return _read_body(request) if request.method == "POST" else b""
