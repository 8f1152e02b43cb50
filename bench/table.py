"""The row every benchmark section returns, and the table they are printed in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Target:
    """A bound a measurement should meet, e.g. ``Target(">=", 10)`` for "at least 10x"."""

    op: Literal[">=", "<="]
    bound: float

    def met(self, value: float) -> bool:
        return value >= self.bound if self.op == ">=" else value <= self.bound

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {_number(self.bound)}"


@dataclass(frozen=True)
class Row:
    """One measurement: ``value`` in ``unit`` (``µs/op``, ``B/session``, ``x`` for a ratio)."""

    section: str
    name: str
    value: float
    unit: str
    target: Target | None = None
    note: str = ""

    @property
    def status(self) -> str:
        if self.target is None:
            return ""
        return "PASS" if self.target.met(self.value) else "FAIL"


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render(rows: Sequence[Row]) -> str:
    """A plain-text table, one line per row, with PASS/FAIL against the targets."""
    header = ("section", "measurement", "result", "target", "status", "note")
    lines = [
        (
            row.section,
            row.name,
            f"{_number(row.value)} {row.unit}",
            "" if row.target is None else f"{row.target} {row.unit}",
            row.status,
            row.note,
        )
        for row in rows
    ]
    widths = [max(len(str(cells[i])) for cells in [header, *lines]) for i in range(len(header))]
    out = []
    for n, cells in enumerate([header, *lines]):
        out.append("  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
