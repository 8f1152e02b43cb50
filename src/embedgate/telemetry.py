"""Metrics and traces through the OpenTelemetry API (the optional extra ``embedgate[otel]``).

The host brings the SDK and its exporters: set a global meter/tracer provider
(``opentelemetry.metrics.set_meter_provider``...) or hand providers to :func:`configure`.
Until one is set, or without ``opentelemetry-api`` installed, every function here returns
after reading a module global: no instrument, attribute or span is built.

The core calls these functions at a few points: mint (:func:`token_issued`,
:func:`remote_mint`, :func:`upstream_call`), cache (:func:`cache_lookup`,
:func:`redis_call`), serve (:func:`token_served`, :func:`stale_served`), the endpoint
(:func:`endpoint_answered`, :func:`rate_limited`) and injection (:func:`injection`).
Attributes carry names and outcomes only: never a token, secret, subject or session id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Final


class _Absent:
    """Stands for the OpenTelemetry API when it is not installed: no provider, ever."""

    _METER_PROVIDER: Any = None
    _TRACER_PROVIDER: Any = None


try:
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
    from opentelemetry.metrics import _internal as _metrics_global
except ImportError:  # pragma: no cover - depends on the installed extras
    _metrics = None  # type: ignore[assignment]
    _trace = _metrics_global = _Absent()  # type: ignore[assignment]

__all__ = [
    "INSTRUMENTS",
    "cache_lookup",
    "configure",
    "endpoint_answered",
    "injection",
    "rate_limited",
    "redis_call",
    "remote_mint",
    "stale_served",
    "start",
    "token_issued",
    "token_served",
    "upstream_call",
]

SCOPE: Final = "embedgate"
# Metric name -> (kind, unit, description). README and tests read this table.
INSTRUMENTS: Final = {
    "embedgate.tokens.issued": ("counter", "{token}", "tokens minted, by provider, mode, outcome"),
    "embedgate.cache.hits": ("counter", "{lookup}", "cache lookups that found a token, by tier"),
    "embedgate.cache.misses": ("counter", "{lookup}", "cache lookups that found none, by tier"),
    "embedgate.tokens.stale_served": (
        "counter",
        "{token}",
        "cached tokens served because the provider failed",
    ),
    "embedgate.endpoint.answers": ("counter", "{response}", "endpoint answers, by route, status"),
    "embedgate.endpoint.rate_limited": ("counter", "{request}", "token requests answered 429"),
    "embedgate.upstream.calls": ("counter", "{call}", "HTTP calls to the provider, by outcome"),
    "embedgate.injections": ("counter", "{page}", "pages given the snippet or skipped, by reason"),
    "embedgate.upstream.duration": ("histogram", "s", "remote mint latency, retries included"),
    "embedgate.endpoint.duration": ("histogram", "s", "latency of embedgate's routes"),
    "embedgate.token.remaining": ("histogram", "s", "token life left when served, by where"),
}

_ATTR_PROVIDER: Final = "embedgate.provider"
_ATTR_OUTCOME: Final = "embedgate.outcome"
_OK: Final = "ok"


class _Instruments:
    """The instruments of one meter provider, made on first use."""

    def __init__(self, provider: Any) -> None:
        from . import __version__

        meter = provider.get_meter(SCOPE, __version__)
        self.provider = provider
        self.by_name: dict[str, Any] = {}
        for name, (kind, unit, description) in INSTRUMENTS.items():
            make = meter.create_counter if kind == "counter" else meter.create_histogram
            self.by_name[name] = make(name, unit=unit, description=description)


class _State:
    meter_provider: Any = None  # from configure(); else the global one
    tracer_provider: Any = None
    instruments: _Instruments | None = None
    tracer: Any = None
    tracer_of: Any = None


_state = _State()
_lock = threading.Lock()
# The fast path of every function below, while no SDK is set: two module-global reads.
# (The OpenTelemetry globals are read directly: they are set once, by set_meter_provider /
# set_tracer_provider; the public getters cost an environment lookup per call until then.)
_meter: Any = None  # the meter provider given to configure()
_tracing: Any = None  # the tracer provider given to configure()


def configure(*, meter_provider: Any = None, tracer_provider: Any = None) -> None:
    """Use these providers instead of the global ones (``None`` goes back to the global)."""
    global _meter, _tracing  # noqa: PLW0603 - the fast path reads plain module globals
    with _lock:
        _meter = _state.meter_provider = meter_provider
        _tracing = _state.tracer_provider = tracer_provider
        _state.instruments = None
        _state.tracer = _state.tracer_of = None


def _instruments() -> _Instruments | None:
    provider = _state.meter_provider or _metrics_global._METER_PROVIDER
    if provider is None:
        return None
    found = _state.instruments
    if found is None or found.provider is not provider:
        with _lock:
            found = _state.instruments
            if found is None or found.provider is not provider:
                found = _state.instruments = _Instruments(provider)
    return found


def _tracer() -> Any:
    provider = _state.tracer_provider or _trace._TRACER_PROVIDER
    if provider is None:
        return None
    if _state.tracer_of is not provider:
        from . import __version__

        with _lock:
            _state.tracer = provider.get_tracer(SCOPE, __version__)
            _state.tracer_of = provider
    return _state.tracer


if _metrics is not None:
    # Providers named in OTEL_PYTHON_METER_PROVIDER / _TRACER_PROVIDER load on first get.
    _metrics.get_meter_provider()
    _trace.get_tracer_provider()


# -- the core's instrumentation points ------------------------------------------------------


def token_issued(provider: str, mode: str, outcome: str = _OK) -> None:
    """A mint ended: ``outcome`` is ``ok`` or the error code."""
    if _meter is None and _metrics_global._METER_PROVIDER is None:
        return
    if (found := _instruments()) is not None:
        attributes = {_ATTR_PROVIDER: provider, "embedgate.mode": mode, _ATTR_OUTCOME: outcome}
        found.by_name["embedgate.tokens.issued"].add(1, attributes)


def cache_lookup(tier: str, hit: bool) -> None:
    """A cache read in ``tier`` (``local`` or ``redis``)."""
    if _meter is None and _metrics_global._METER_PROVIDER is None:
        return
    if (found := _instruments()) is not None:
        name = "embedgate.cache.hits" if hit else "embedgate.cache.misses"
        found.by_name[name].add(1, {"embedgate.cache.tier": tier})


def stale_served(provider: str) -> None:
    """A cached token was served because minting a fresh one failed."""
    if _meter is None and _metrics_global._METER_PROVIDER is None:
        return
    if (found := _instruments()) is not None:
        found.by_name["embedgate.tokens.stale_served"].add(1, {_ATTR_PROVIDER: provider})


def token_served(remaining: float, where: str) -> None:
    """A token went out (``where``: ``page`` or ``endpoint``) with ``remaining`` s of life."""
    if _meter is None and _metrics_global._METER_PROVIDER is None:
        return
    if (found := _instruments()) is not None:
        found.by_name["embedgate.token.remaining"].record(
            max(0.0, remaining), {"embedgate.served_by": where}
        )


def rate_limited() -> None:
    """A token request was answered 429."""
    if _meter is None and _metrics_global._METER_PROVIDER is None:
        return
    if (found := _instruments()) is not None:
        found.by_name["embedgate.endpoint.rate_limited"].add(1)


def start() -> float:
    """A start time for :func:`endpoint_answered` (0.0, uncounted, without an SDK)."""
    if _meter is None and _metrics_global._METER_PROVIDER is None:
        return 0.0
    return time.perf_counter()


def endpoint_answered(route: str, status: int, started: float) -> None:
    """One of embedgate's routes (``token``, ``script``, ``jwks``) answered ``status``."""
    if _meter is None and _metrics_global._METER_PROVIDER is None:
        return
    if (found := _instruments()) is not None:
        attributes = {"embedgate.route": route, "http.response.status_code": status}
        found.by_name["embedgate.endpoint.answers"].add(1, attributes)
        if started:
            elapsed = time.perf_counter() - started
            found.by_name["embedgate.endpoint.duration"].record(elapsed, attributes)


def injection(performed: bool, reason: str) -> None:
    """A page got the snippet (``performed``) or was left alone, and why."""
    if _meter is None and _metrics_global._METER_PROVIDER is None:
        return
    if (found := _instruments()) is not None:
        attributes = {
            "embedgate.injection": "performed" if performed else "skipped",
            "embedgate.reason": reason,
        }
        found.by_name["embedgate.injections"].add(1, attributes)


def upstream_call(provider: str, outcome: str = _OK) -> None:
    """One HTTP request to the provider ended (``ok`` or the error code)."""
    if _meter is None and _metrics_global._METER_PROVIDER is None:
        return
    if (found := _instruments()) is not None:
        attributes = {_ATTR_PROVIDER: provider, _ATTR_OUTCOME: outcome}
        found.by_name["embedgate.upstream.calls"].add(1, attributes)


_NULL: Final[AbstractContextManager[None]] = nullcontext()


def remote_mint(provider: str) -> AbstractContextManager[None]:
    """Around one remote mint (its retries included): a span and the latency histogram."""
    if (
        _meter is None
        and _metrics_global._METER_PROVIDER is None
        and _tracing is None
        and _trace._TRACER_PROVIDER is None
    ):
        return _NULL
    return _observed("embedgate.mint", provider, {_ATTR_PROVIDER: provider}, histogram=True)


def redis_call(operation: str) -> AbstractContextManager[None]:
    """Around one Redis round trip: a span (``db.system`` redis, the command's name)."""
    if _tracing is None and _trace._TRACER_PROVIDER is None:
        return _NULL
    attributes = {"db.system": "redis", "db.operation.name": operation}
    return _observed(f"embedgate.redis {operation}", "", attributes, histogram=False)


@contextmanager
def _observed(
    name: str, provider: str, attributes: dict[str, Any], *, histogram: bool
) -> Iterator[None]:
    tracer = _tracer()
    span = None if tracer is None else tracer.start_span(name, attributes=attributes)
    started = time.perf_counter()
    outcome = _OK
    try:
        if span is None:
            yield
        else:
            with _trace.use_span(
                span, end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                yield
    except BaseException as exc:
        outcome = str(getattr(exc, "code", None) or type(exc).__name__)
        if span is not None:
            from opentelemetry.trace import Status, StatusCode

            # The type only: messages may name a URL; codes are embedgate's own.
            span.set_status(Status(StatusCode.ERROR, outcome))
        raise
    finally:
        if span is not None:
            span.set_attribute(_ATTR_OUTCOME, outcome)
            span.end()
        found = _instruments()
        if histogram and found is not None:
            found.by_name["embedgate.upstream.duration"].record(
                time.perf_counter() - started, {**attributes, _ATTR_OUTCOME: outcome}
            )
