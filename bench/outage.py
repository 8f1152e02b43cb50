"""Outage section: the reliability run of tests/providers/test_outage.py (the Toucan profile
behind the ASGI middleware under uvicorn, 6 sessions, a fake provider on 127.0.0.1 that hangs
4 s then answers 500 for 4 s), measured: requests served during the outage, their p99 next
to the no-fault run's, and upstream calls per session."""

from __future__ import annotations

from tests.providers.outage import SESSIONS, run_outage

from bench.table import Row, Target

SECTION = "outage"


def run() -> list[Row]:
    result = run_outage()
    outage = result.load.of("outage")
    failed = [o for o in result.load.outcomes if not o.ok]
    during = [s for s in result.fake.seen if result.outage_from <= s.at < result.recovered_at]
    after = [s for s in result.fake.seen if s.at >= result.recovered_at]
    base_p99, outage_p99 = result.p99("baseline"), result.p99("outage")
    seconds = result.recovered_at - result.outage_from
    return [
        Row(SECTION, "requests during the outage", len(outage), "requests"),
        Row(SECTION, "failed requests (all phases)", len(failed), "requests", Target("<=", 0)),
        Row(SECTION, "p99, no-fault run", base_p99 * 1e3, "ms"),
        Row(SECTION, "p99, outage", outage_p99 * 1e3, "ms"),
        Row(
            SECTION,
            "p99 outage / no-fault",
            outage_p99 / base_p99,
            "x",
            Target("<=", 2.0),
            "server, provider and clients share one interpreter",
        ),
        Row(
            SECTION,
            f"upstream calls per session, {seconds:.0f} s of outage",
            len(during) / SESSIONS,
            "calls",
            note="backoff windows 1, 2, 4 s...; the breaker stops the rest",
        ),
        Row(
            SECTION,
            "mints per session after recovery",
            len(after) / SESSIONS,
            "calls",
            Target("<=", 1.0),
        ),
    ]


if __name__ == "__main__":
    from bench.table import render

    print(render(run()))
