"""The demo's dashboards: what each one aggregates, and the JSON the data API answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from .dataset import SalesDatabase
from .rls import RowFilter

DEFAULT_LIMIT: Final = 25
MAX_LIMIT: Final = 500
TABLE_COLUMNS: Final = (
    ("date", "Date"),
    ("tenant", "Tenant"),
    ("region", "Region"),
    ("product", "Product"),
    ("units", "Units"),
    ("amount", "Amount"),
)


@dataclass(frozen=True)
class Dashboard:
    id: str
    title: str
    group_by: Literal["month", "product", "region", "tenant"]


DASHBOARDS: Final = {
    d.id: d
    for d in (
        Dashboard("sales", "Sales by month", "month"),
        Dashboard("products", "Sales by product", "product"),
    )
}


def _amount(cents: int | None) -> float:
    return round((cents or 0) / 100, 2)


def dashboard_data(
    db: SalesDatabase, dashboard: Dashboard, rows: RowFilter, limit: int = DEFAULT_LIMIT
) -> dict[str, Any]:
    """Chart points, the top ``limit`` sales and totals, all restricted by ``rows``.

    Only fixed SQL text is formatted in here (the filter's clause and the dashboard's
    column name); every value travels as a parameter.
    """
    where = rows.clause
    group = dashboard.group_by
    points = db.query(
        f"SELECT {group} AS label, SUM(amount_cents) AS cents FROM sales "  # noqa: S608
        f"WHERE {where} GROUP BY {group} ORDER BY {group}",
        rows.params,
    )
    top = db.query(
        "SELECT date, tenant, region, product, units, amount_cents FROM sales "  # noqa: S608
        f"WHERE {where} ORDER BY amount_cents DESC, id LIMIT ?",
        (*rows.params, limit),
    )
    totals = db.query(
        f"SELECT COUNT(*) AS n, SUM(amount_cents) AS cents FROM sales WHERE {where}",  # noqa: S608
        rows.params,
    )[0]
    return {
        "dashboard": {"id": dashboard.id, "title": dashboard.title, "group_by": group},
        "filter": rows.to_json(),
        "chart": {
            "title": dashboard.title,
            "x": group,
            "y": "amount",
            "points": [{"label": p["label"], "value": _amount(p["cents"])} for p in points],
        },
        "table": {
            "columns": [{"key": key, "label": label} for key, label in TABLE_COLUMNS],
            "rows": [
                {
                    **{k: r[k] for k in ("date", "tenant", "region", "product", "units")},
                    "amount": _amount(r["amount_cents"]),
                }
                for r in top
            ],
            "limit": limit,
        },
        "totals": {"rows": totals["n"], "amount": _amount(totals["cents"])},
    }
