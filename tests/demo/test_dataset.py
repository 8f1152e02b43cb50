"""The bundled sales data: deterministic, complete, read-only."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from dataclasses import astuple

import pytest

from embedgate.demo.dataset import MONTHS, PRODUCTS, REGIONS, TENANTS, SalesDatabase, generate_rows

PINNED = "02529166d370f4e0"


def test_one_row_per_month_tenant_region_and_product() -> None:
    rows = list(generate_rows())
    assert len(rows) == 432
    keys = Counter((r.month, r.tenant, r.region, r.product) for r in rows)
    assert len(keys) == len(MONTHS) * len(TENANTS) * len(REGIONS) * len(PRODUCTS)
    assert set(keys.values()) == {1}
    assert all(r.date.startswith(r.month) for r in rows)
    assert all(r.units > 0 and r.amount_cents > 0 for r in rows)


def test_rows_are_the_same_on_every_run() -> None:
    encoded = json.dumps([astuple(r) for r in generate_rows()]).encode()
    # Pinned: a change to the generator changes what the demo (and its screenshots) show.
    assert hashlib.sha256(encoded).hexdigest()[:16] == PINNED
    first = next(generate_rows())
    assert (first.id, first.month, first.tenant, first.region, first.product) == (
        1,
        "2024-01",
        "acme",
        "EU",
        "Anvils",
    )


def test_the_database_holds_every_row_and_is_read_only() -> None:
    db = SalesDatabase()
    try:
        assert db.query("SELECT COUNT(*) AS n FROM sales") == [{"n": 432}]
        assert db.query("SELECT COUNT(*) AS n FROM sales WHERE tenant = ?", ("acme",)) == [
            {"n": 144}
        ]
        with pytest.raises(sqlite3.OperationalError):
            db.query("DELETE FROM sales")
    finally:
        db.close()
