"""The demo's sales data: 432 deterministic rows in an in-memory SQLite table.

Nothing is downloaded or stored: every value derives from a SHA-256 of the row's key, so
every process (and every Python version) builds the same table.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

TENANTS: Final = ("acme", "globex", "initech")
REGIONS: Final = ("EU", "US", "APAC")
PRODUCTS: Final = ("Anvils", "Gadgets", "Rockets", "Widgets")
MONTHS: Final = tuple(f"2024-{m:02d}" for m in range(1, 13))

_SCHEMA: Final = """
CREATE TABLE sales (
    id INTEGER PRIMARY KEY,
    date TEXT NOT NULL,
    month TEXT NOT NULL,
    tenant TEXT NOT NULL,
    region TEXT NOT NULL,
    product TEXT NOT NULL,
    units INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL
)
"""


@dataclass(frozen=True)
class SaleRow:
    id: int
    date: str
    month: str
    tenant: str
    region: str
    product: str
    units: int
    amount_cents: int


def _number(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")


def generate_rows() -> Iterator[SaleRow]:
    """One sale per month, tenant, region and product; the same rows on every run."""
    row_id = 0
    for month in MONTHS:
        for tenant in TENANTS:
            for region in REGIONS:
                for product in PRODUCTS:
                    row_id += 1
                    n = _number(month, tenant, region, product)
                    units = 1 + n % 40
                    unit_price_cents = 2_500 + (n >> 8) % 22_500
                    yield SaleRow(
                        id=row_id,
                        date=f"{month}-{1 + (n >> 32) % 28:02d}",
                        month=month,
                        tenant=tenant,
                        region=region,
                        product=product,
                        units=units,
                        amount_cents=units * unit_price_cents,
                    )


class SalesDatabase:
    """The sales table in a private in-memory SQLite database, safe to share across threads.

    Queries take a WHERE clause with ``?`` placeholders and its parameters; callers build
    both from fixed strings (see :mod:`embedgate.demo.rls`), never from request values.
    """

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._conn:
            self._conn.execute(_SCHEMA)
            self._conn.executemany(
                "INSERT INTO sales VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.id, r.date, r.month, r.tenant, r.region, r.product, r.units, r.amount_cents)
                    for r in generate_rows()
                ],
            )
        # Read-only from here on: defence in depth behind the parameterised queries.
        self._conn.execute("PRAGMA query_only = ON")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run one read-only statement; rows come back as plain dicts."""
        with self._lock:
            return [dict(row) for row in self._conn.execute(sql, tuple(params)).fetchall()]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
