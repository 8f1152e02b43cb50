"""Fixtures of the operations tests: an OpenTelemetry SDK reading into memory, apps that
serve a page and the endpoint, a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from embedgate import telemetry
from tests.support.binaries import require_binary
from tests.support.redis_server import RedisServer


@dataclass
class Otel:
    """What the SDK recorded: metric points and finished spans."""

    reader: InMemoryMetricReader
    exporter: InMemorySpanExporter

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """``(attributes, point)`` of every data point of metric ``name``."""
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, Any], Any]] = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += [(dict(p.attributes or {}), p) for p in metric.data.data_points]
        return found

    def count(self, name: str, **attributes: Any) -> float:
        """The sum of counter ``name`` (or the count of histogram ``name``) over the points
        whose attributes include ``attributes`` (dots spelled as ``__``)."""
        wanted = {k.replace("__", "."): v for k, v in attributes.items()}
        total: float = 0
        for attrs, point in self.points(name):
            if all(attrs.get(k) == v for k, v in wanted.items()):
                total += point.count if hasattr(point, "bucket_counts") else point.value
        return total

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if name is None or s.name == name]

    def attribute_values(self) -> list[str]:
        """Every attribute value the SDK holds, as text."""
        values: list[str] = []
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        values += [str(v) for v in (point.attributes or {}).values()]
        for span in self.exporter.get_finished_spans():
            values += [str(v) for v in (span.attributes or {}).values()]
            values.append(span.name)
            values.append(str(span.status.description))
        return values


@pytest.fixture
def otel() -> Iterator[Otel]:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    exporter = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.configure(meter_provider=meters, tracer_provider=tracers)
    try:
        yield Otel(reader, exporter)
    finally:
        telemetry.configure()
        meters.shutdown()
        tracers.shutdown()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer(require_binary("redis-server")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url
