"""The remote minter: issuers that ask the analytics provider for each token over HTTP.

A provider's exchange is written once, as a generator that yields :class:`HttpCall` steps
and receives :class:`HttpReply` answers; :class:`RemoteMinter` drives it with one shared
``httpx.Client`` for :meth:`~RemoteMinter.issue` and one shared ``httpx.AsyncClient`` for
:meth:`~RemoteMinter.aissue`, both created on first use. Every call has explicit connect
and read timeouts; connection errors, timeouts and 5xx answers are retried a bounded number
of times with exponential backoff and jitter; 4xx answers never are. Failures become
:class:`~embedgate.errors.IssuerError` with a ``code``, the HTTP ``status`` and a
``retry_after`` hint. Credentials travel in request headers only: never in a URL, a log line
or an error message.
"""

from __future__ import annotations

import functools
import importlib
import logging
import random
import ssl
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from http.cookies import CookieError, SimpleCookie
from typing import Any, Final

import anyio

from .. import telemetry
from ..errors import ConfigurationError, IssuerError
from .base import HttpPolicy as HttpPolicy  # noqa: PLC0414 - re-exported

try:
    import httpx
except ImportError:  # pragma: no cover - depends on the installed extras
    raise ConfigurationError(
        "EMBEDGATE_PROVIDER",
        "this provider mints tokens over HTTP and needs httpx: pip install 'embedgate[http]'",
    ) from None
from ..token import EmbedToken
from .base import IssueRequest

log = logging.getLogger("embedgate")

# A provider's answer: status, headers, body (None when over the size cap).
_Answer = tuple[int, httpx.Headers, bytes | None]

UNAVAILABLE: Final = "provider_unavailable"
TIMEOUT: Final = "provider_timeout"
REJECTED: Final = "provider_rejected"
RATE_LIMITED: Final = "provider_rate_limited"
MALFORMED: Final = "provider_malformed"
RETRYABLE: Final = frozenset({UNAVAILABLE, TIMEOUT})
MAX_BODY: Final = 1_048_576
_DEFAULT_RETRY_AFTER: Final = {
    UNAVAILABLE: 5.0,
    TIMEOUT: 5.0,
    RATE_LIMITED: 30.0,
    REJECTED: 60.0,
    MALFORMED: 30.0,
}


@dataclass(frozen=True)
class HttpCall:
    """One request of an exchange. ``what`` names it in errors ("token request").

    ``path`` is relative to the minter's base URL, or an absolute URL for a provider whose
    credentials come from another service (an identity provider's token endpoint).
    ``form`` sends an ``application/x-www-form-urlencoded`` body instead of ``json``.
    ``handles`` lists non-2xx statuses the exchange deals with itself (a 401 that means
    "log in again"); they come back as replies instead of errors.
    """

    method: str
    path: str
    what: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    json: Any = field(default=None, repr=False)
    cookies: Mapping[str, str] = field(default_factory=dict, repr=False)
    handles: frozenset[int] = frozenset()
    form: Mapping[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class HttpReply:
    """A provider's answer: the status, the JSON object it sent, the cookies it set."""

    status: int
    data: dict[str, Any] = field(repr=False)
    cookies: dict[str, str] = field(default_factory=dict, repr=False)


Exchange = Generator[HttpCall, HttpReply, EmbedToken]


class RemoteMinter(ABC):
    """An issuer whose tokens the provider mints; subclasses write :meth:`exchange`."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        policy: HttpPolicy | None = None,
        credential_setting: str = "EMBEDGATE_API_KEY",
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._name = name
        self._base_url = base_url.rstrip("/")
        self.policy = policy or HttpPolicy()
        self._credential_setting = credential_setting
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, nothing secret
        self._transport = transport
        self._async_transport = async_transport
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._async_client: tuple[object, httpx.AsyncClient] | None = None
        _warm_up()

    # -- what subclasses provide ----------------------------------------------------------

    @abstractmethod
    def exchange(self, request: IssueRequest) -> Exchange:
        """Yield the calls that mint a token for ``request``; return the token."""

    def scope_parts(self) -> tuple[str, ...]:
        """Settings that make tokens distinct, besides the principal (see ``cache_scope``)."""
        return ()

    # -- the Issuer interface -------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def base_url(self) -> str:
        return self._base_url

    def cache_scope(self) -> str:
        return "|".join((self._name, self._base_url, *self.scope_parts()))

    def issue(self, request: IssueRequest) -> EmbedToken:
        with telemetry.remote_mint(self._name):
            return self._issue(request)

    def _issue(self, request: IssueRequest) -> EmbedToken:
        steps = self.exchange(request)
        try:
            call = next(steps)
            while True:
                call = steps.send(self._send(call, request.retry_answered))
        except StopIteration as done:
            token: EmbedToken = done.value
            return token
        finally:
            steps.close()

    async def aissue(self, request: IssueRequest) -> EmbedToken:
        with telemetry.remote_mint(self._name):
            return await self._aissue(request)

    async def _aissue(self, request: IssueRequest) -> EmbedToken:
        steps = self.exchange(request)
        try:
            call = next(steps)
            while True:
                call = steps.send(await self._asend(call, request.retry_answered))
        except StopIteration as done:
            token: EmbedToken = done.value
            return token
        finally:
            steps.close()

    def jwks(self) -> dict[str, Any] | None:
        return None

    def use_transport(
        self,
        transport: httpx.BaseTransport | None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Send every later request through these httpx transports (for tests: an
        in-process fake provider, see :mod:`embedgate.testing`)."""
        with self._lock:
            self._transport, self._async_transport = transport, async_transport
            client, self._client = self._client, None
            self._async_client = None
        if client is not None:
            client.close()

    def close(self) -> None:
        """Close the sync client (the async one closes with :meth:`aclose`)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        self.close()
        with self._lock:
            held, self._async_client = self._async_client, None
        if held is not None and held[0] == _loop_key():
            await held[1].aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, base_url={self._base_url!r})"

    # -- transport ------------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        # Cookies travel per exchange (explicit headers): a shared jar would mix the
        # sessions of concurrent exchanges, so the clients' jars refuse every cookie.
        return {
            "timeout": _timeout(self.policy),
            # Loading the CA bundle takes 0.1-0.5 s: once per process, not per client (an
            # AsyncClient is made per event loop).
            "verify": _tls_context(),
            "follow_redirects": False,
            "cookies": CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            "headers": {"accept": "application/json", "user-agent": "embedgate"},
        }

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(transport=self._transport, **self._client_options())
            return self._client

    def _loop_client(self) -> httpx.AsyncClient:
        # An AsyncClient's connections belong to one event loop: keep one per running loop.
        key = _loop_key()
        with self._lock:
            if self._async_client is None or self._async_client[0] != key:
                client = httpx.AsyncClient(
                    transport=self._async_transport, **self._client_options()
                )
                self._async_client = (key, client)
            return self._async_client[1]

    def _request_args(self, call: HttpCall) -> dict[str, Any]:
        headers = dict(call.headers)
        if call.cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in call.cookies.items())
        args: dict[str, Any] = {"headers": headers}
        if call.json is not None:
            args["json"] = call.json
        if call.form is not None:
            args["data"] = dict(call.form)
        return args

    def _url(self, call: HttpCall) -> str:
        return (
            call.path
            if call.path.startswith(("https://", "http://"))
            else self._base_url + call.path
        )

    def _send(self, call: HttpCall, retry_answered: bool = True) -> HttpReply:
        client = self._sync_client()
        url = self._url(call)
        for attempt in range(self.policy.retries + 1):
            result: _Answer | httpx.TransportError
            try:
                with client.stream(call.method, url, **self._request_args(call)) as response:
                    result = (response.status_code, response.headers, _read_capped(response))
            except httpx.TransportError as exc:
                result = exc
            step = self._settle(call, result, attempt, retry_answered)
            if isinstance(step, HttpReply):
                return step
            time.sleep(step)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _asend(self, call: HttpCall, retry_answered: bool = True) -> HttpReply:
        client = self._loop_client()
        url = self._url(call)
        for attempt in range(self.policy.retries + 1):
            result: _Answer | httpx.TransportError
            try:
                stream = client.stream(call.method, url, **self._request_args(call))
                async with stream as response:
                    body = await _aread_capped(response)
                    result = (response.status_code, response.headers, body)
            except httpx.TransportError as exc:
                result = exc
            step = self._settle(call, result, attempt, retry_answered)
            if isinstance(step, HttpReply):
                return step
            await anyio.sleep(step)
        raise AssertionError("unreachable")  # pragma: no cover

    def _settle(
        self,
        call: HttpCall,
        result: _Answer | httpx.TransportError,
        attempt: int,
        retry_answered: bool,
    ) -> HttpReply | float:
        """One attempt's outcome, for both faces of the retry loop: the reply, or the delay
        before the next attempt; raises the attempt's error when there is none."""
        if isinstance(result, httpx.TransportError):
            error, reached = self._transport_outcome(call, result)
        else:
            outcome = self._judge(call, *result)
            if isinstance(outcome, HttpReply):
                telemetry.upstream_call(self._name)
                return outcome
            error, reached = outcome, True
        telemetry.upstream_call(self._name, error.code)
        retry = retry_answered or not reached
        delay = self._retry_delay(call, error, attempt) if retry else None
        if delay is None:
            raise error
        return delay

    def _transport_outcome(
        self, call: HttpCall, exc: httpx.TransportError
    ) -> tuple[IssuerError, bool]:
        """The error for a failed transport, and whether the request may have reached the
        provider (a connect failure did not; a read timeout may have)."""
        if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
            return self._transport_error(call, TIMEOUT, exc), False
        if isinstance(exc, httpx.TimeoutException):
            return self._transport_error(call, TIMEOUT, exc), True
        if isinstance(exc, httpx.ConnectError):
            return self._transport_error(call, UNAVAILABLE, exc), False
        return self._transport_error(call, UNAVAILABLE, exc), True

    def _retry_delay(self, call: HttpCall, error: IssuerError, attempt: int) -> float | None:
        if error.code not in RETRYABLE or attempt >= self.policy.retries:
            return None
        delay = self.policy.delay(attempt, self._rng)
        log.warning(
            "embedgate: %s %s failed (%s%s); retry %d of %d in %.2f s",
            self._name,
            call.what,
            error.code,
            "" if error.status is None else f", HTTP {error.status}",
            attempt + 1,
            self.policy.retries,
            delay,
        )
        return delay

    # -- errors ---------------------------------------------------------------------------

    def error(
        self,
        code: str,
        problem: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> IssuerError:
        """An :class:`IssuerError` naming this provider (``problem`` must hold no secret)."""
        return IssuerError(
            f"{self._name}: {problem}",
            provider=self._name,
            code=code,
            status=status,
            retry_after=_DEFAULT_RETRY_AFTER.get(code, 5.0) if retry_after is None else retry_after,
            hinted=retry_after is not None,
        )

    def _transport_error(self, call: HttpCall, code: str, exc: Exception) -> IssuerError:
        # Only the exception's type: httpx messages may quote the URL.
        problem = "timed out" if code == TIMEOUT else "could not reach the provider"
        return self.error(code, f"the {call.what} {problem} ({type(exc).__name__})")

    def _judge(
        self, call: HttpCall, status: int, headers: httpx.Headers, body: bytes | None
    ) -> HttpReply | IssuerError:
        if body is None:
            return self.error(
                MALFORMED,
                f"the {call.what} answered more than {MAX_BODY} bytes (HTTP {status})",
                status=status,
            )
        if 200 <= status < 300 or status in call.handles:
            data = _json_object(body)
            if data is None:
                if status in call.handles:
                    data = {}
                else:
                    return self.error(
                        MALFORMED,
                        f"the {call.what} answered HTTP {status} without a JSON object",
                        status=status,
                    )
            return HttpReply(status, data, _set_cookies(headers))
        retry_after = _retry_after(headers)
        if status == 429:
            return self.error(
                RATE_LIMITED,
                f"the {call.what} was rate limited (HTTP 429)",
                status=status,
                retry_after=retry_after,
            )
        if status >= 500:
            return self.error(
                UNAVAILABLE,
                f"the {call.what} failed with HTTP {status}",
                status=status,
                retry_after=retry_after,
            )
        if status in (401, 403):
            return self.error(
                REJECTED,
                f"the {call.what} was refused (HTTP {status}); check {self._credential_setting}",
                status=status,
            )
        if 300 <= status < 400:
            return self.error(
                MALFORMED,
                f"the {call.what} answered an unexpected redirect (HTTP {status})",
                status=status,
            )
        return self.error(REJECTED, f"the {call.what} was refused (HTTP {status})", status=status)


def _warm_up() -> None:
    """What the first client would load (the CA bundle, httpcore): at start-up, not in front
    of the first page and its deadline. No thread, no connection: safe before a fork."""
    _tls_context()
    importlib.import_module("httpcore")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The default verifying TLS context (certifi's bundle, as httpx builds it), shared."""
    return httpx.create_ssl_context()


def _timeout(policy: HttpPolicy) -> httpx.Timeout:
    return httpx.Timeout(
        connect=policy.connect_timeout,
        read=policy.read_timeout,
        write=policy.read_timeout,
        pool=policy.connect_timeout,
    )


def _loop_key() -> object:
    import sniffio

    library = sniffio.current_async_library()
    if library == "trio":
        import trio

        return trio.lowlevel.current_trio_token()
    import asyncio

    return asyncio.get_running_loop()


def _declared_too_large(response: httpx.Response) -> bool:
    declared = response.headers.get("content-length")
    try:
        return declared is not None and int(declared) > MAX_BODY
    except ValueError:
        return False


def _read_capped(response: httpx.Response) -> bytes | None:
    """The reply's body, read as it streams; None once past ``MAX_BODY`` bytes (the rest is
    never read: the connection is dropped), so a huge or endless reply costs the cap."""
    if _declared_too_large(response):
        return None
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


async def _aread_capped(response: httpx.Response) -> bytes | None:
    """Async face of :func:`_read_capped`."""
    if _declared_too_large(response):
        return None
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


def _json_object(body: bytes) -> dict[str, Any] | None:
    import json

    if len(body) > MAX_BODY:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _set_cookies(headers: httpx.Headers) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for value in headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(value)
        except CookieError:
            continue
        cookies.update({name: morsel.value for name, morsel in jar.items()})
    return cookies


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from a ``Retry-After`` header (delta or HTTP date), kept within 1 s..1 h."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(3600.0, max(1.0, seconds))
