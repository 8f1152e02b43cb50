"""Telemetry section: what the OpenTelemetry instrumentation costs on the hot paths (a page
served with a cached token, a cache hit in the token service), with the instrumentation
points stripped, with the OpenTelemetry API and no SDK (the default), and with an SDK
recording into memory."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from bench.table import Row, Target
from bench.timing import per_call
from bench.web import BATCH, PAGE, asgi_batch, population, starlette_app
from bench.web import engine as web_engine
from embedgate import Principal, telemetry
from embedgate.asgi import EmbedgateMiddleware

SECTION = "telemetry"
MODES = ("stripped", "no SDK", "SDK")
NO_SDK_TARGET = 1.05  # the API without an SDK: at most 5 % over no instrumentation at all
_ORIGINALS = {name: getattr(telemetry, name) for name in telemetry.__all__ if name != "INSTRUMENTS"}


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


def _stripped() -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(_ORIGINALS, _noop)
    out["start"] = lambda: 0.0
    out["remote_mint"] = out["redis_call"] = lambda *a: nullcontext()
    return out


class _Modes:
    """Switches embedgate's telemetry between the three modes measured."""

    def __init__(self) -> None:
        self.meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
        self.tracers = TracerProvider()
        self.stripped = _stripped()

    def use(self, mode: str) -> None:
        functions = self.stripped if mode == "stripped" else _ORIGINALS
        for name, function in functions.items():
            setattr(telemetry, name, function)
        if mode == "SDK":
            telemetry.configure(meter_provider=self.meters, tracer_provider=self.tracers)
        else:
            telemetry.configure()

    def restore(self) -> None:
        self.use("no SDK")
        self.meters.shutdown()
        self.tracers.shutdown()


def _best(
    modes: _Modes, timers: dict[str, Callable[[], object]], per: int, rounds: int = 9
) -> dict[str, float]:
    """Seconds per operation in each mode: best of ``rounds``, modes taken in turns."""
    best = dict.fromkeys(timers, float("inf"))
    for _ in range(rounds):
        for mode, timer in timers.items():
            modes.use(mode)
            best[mode] = min(best[mode], per_call(timer, number=3, repeat=1) / per)
    return best


def _rows(label: str, unit: str, scale: float, t: dict[str, float]) -> list[Row]:
    rows = [Row(SECTION, f"{label}: {mode}", t[mode] * scale, unit) for mode in MODES]
    rows.append(
        Row(
            SECTION,
            f"{label}: no SDK / stripped",
            t["no SDK"] / t["stripped"],
            "x",
            Target("<=", NO_SDK_TARGET),
            note=f"{(t['no SDK'] - t['stripped']) * 1e9:+.0f} ns per operation",
        )
    )
    rows.append(
        Row(
            SECTION,
            f"{label}: SDK / no SDK",
            t["SDK"] / t["no SDK"],
            "x",
            note=f"recording costs {(t['SDK'] - t['no SDK']) * 1e6:.1f} µs per operation",
        )
    )
    return rows


def run() -> list[Row]:
    modes = _Modes()
    try:
        engine = web_engine()
        gated = EmbedgateMiddleware(starlette_app(), engine)
        batch = asgi_batch(gated, population(engine, sessions=200))

        def page() -> int:
            return batch(0)  # the same BATCH sessions every time: only telemetry differs

        assert page() > len(PAGE) * BATCH  # the token went in
        page_times = _best(modes, dict.fromkeys(MODES, page), BATCH)

        service = engine.service
        principal = Principal(subject="user-0000042")
        service.get_token(principal, "bench-hit")
        hits = 1000

        def cache_hits() -> None:
            for _ in range(hits):
                service.get_token(principal, "bench-hit")

        hit_times = _best(modes, dict.fromkeys(MODES, cache_hits), hits)
        return [
            *_rows("page (ASGI, cached token)", "µs/req", 1e6, page_times),
            *_rows("token service cache hit", "µs/op", 1e6, hit_times),
        ]
    finally:
        modes.restore()
