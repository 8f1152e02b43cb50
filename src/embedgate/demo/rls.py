"""Row-level security: the SQL filter a viewer's identity allows, as fixed SQL text plus
parameters (token values only ever travel as parameters).

Rules, in order:

1. role ``admin``: every row (admins are unrestricted, whatever their tenant);
2. no usable tenant: no rows (deny by default, never "everything");
3. otherwise ``tenant = <tenant>``, and ``region IN (<regions>)`` when the
   ``region`` attribute is present (a string or a list of strings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from .identity import Identity

ADMIN_ROLE: Final = "admin"
_NOTHING: Final = "1 = 0"


@dataclass(frozen=True)
class RowFilter:
    """A WHERE clause (``?`` placeholders), its parameters, and why it was chosen."""

    clause: str
    params: tuple[str, ...]
    rule: str
    reason: str
    tenant: str | None = None
    regions: tuple[str, ...] | None = None

    @property
    def unrestricted(self) -> bool:
        return self.rule == "unrestricted"

    @property
    def denied(self) -> bool:
        return self.rule == "denied"

    def to_json(self) -> dict[str, Any]:
        """The filter as the data API reports it, so people and tests can see it."""
        return {
            "rule": self.rule,
            "unrestricted": self.unrestricted,
            "denied": self.denied,
            "tenant": self.tenant,
            "regions": None if self.regions is None else list(self.regions),
            "sql": self.clause,
            "reason": self.reason,
        }


def _deny(reason: str) -> RowFilter:
    return RowFilter(_NOTHING, (), "denied", reason)


def _regions(value: Any) -> tuple[str, ...] | None:
    """The allowed regions, or None when the value is unusable."""
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return tuple(dict.fromkeys(value))
    return None


def row_filter(identity: Identity) -> RowFilter:
    """The rows ``identity`` may see."""
    if ADMIN_ROLE in identity.roles:
        return RowFilter("1 = 1", (), "unrestricted", "role admin: every tenant and region")
    tenant = identity.tenant
    if not isinstance(tenant, str) or not tenant:
        return _deny("the token names no tenant, so no rows are shown")
    if "region" not in identity.attributes or identity.attributes["region"] is None:
        return RowFilter(
            "tenant = ?", (tenant,), "tenant", f"tenant {tenant}, every region", tenant=tenant
        )
    regions = _regions(identity.attributes["region"])
    if regions is None:
        return _deny("attributes.region must be a string or a non-empty list of strings")
    placeholders = ", ".join("?" * len(regions))
    return RowFilter(
        f"tenant = ? AND region IN ({placeholders})",
        (tenant, *regions),
        "tenant+region",
        f"tenant {tenant}, region {' or '.join(regions)}",
        tenant=tenant,
        regions=regions,
    )
