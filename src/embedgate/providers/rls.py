"""Row-level security clauses from principal attributes, for providers that take raw SQL
(Superset guest tokens).

Values never reach SQL as text to interpret: strings become single-quoted literals with
quotes doubled, numbers and booleans typed literals, lists ``IN (...)``. Control characters
and backslashes are refused outright (a backslash escapes the closing quote in MySQL's
default mode), so a value can only ever narrow what a user sees, never widen it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError, PrincipalError
from ..principal import AttributeValue, Principal, Scalar

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\\]")
# Fields of the principal itself that may drive a rule when no attribute has the name.
_PRINCIPAL_FIELDS = ("tenant", "email", "subject")


def sql_literal(field: str, value: Scalar) -> str:
    """``value`` as a SQL literal; raises :class:`PrincipalError` for unsafe strings."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PrincipalError(field, "must be a finite number")
        return repr(value)
    if _CONTROL.search(value):
        raise PrincipalError(
            field, "contains a control character or a backslash, refused in a row-level filter"
        )
    return "'" + value.replace("'", "''") + "'"


def clause(column: str, field: str, value: AttributeValue) -> str:
    """``column = literal``, ``column IS NULL``, or ``column IN (...)`` for a list.

    An empty list matches nothing (``1 = 0``): no value means no rows, not all rows.
    """
    if isinstance(value, tuple):
        if not value:
            return "1 = 0"
        if any(item is None for item in value):
            raise PrincipalError(field, "a list used in a row-level filter may not hold null")
        items = ", ".join(sql_literal(f"{field}[{i}]", item) for i, item in enumerate(value))
        return f"{column} IN ({items})"
    if value is None:
        return f"{column} IS NULL"
    return f"{column} = {sql_literal(field, value)}"


@dataclass(frozen=True)
class RlsRule:
    """One attribute filtering one column (of one dataset, or of every dataset)."""

    attribute: str
    column: str
    dataset: int | None = None

    def value(self, principal: Principal) -> AttributeValue:
        if self.attribute in principal.attributes:
            return principal.attributes[self.attribute]
        if self.attribute in _PRINCIPAL_FIELDS:
            found = getattr(principal, self.attribute)
            if found is not None:
                return str(found)
        # Fail closed: a rule whose input is missing must not silently disappear.
        raise PrincipalError(
            f"attributes.{self.attribute}", "is required by a row-level security rule"
        )

    def render(self, principal: Principal) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "clause": clause(self.column, f"attributes.{self.attribute}", self.value(principal))
        }
        if self.dataset is not None:
            rule["dataset"] = self.dataset
        return rule


def parse_rules(setting: str, mapping: Mapping[str, Any] | None) -> tuple[RlsRule, ...]:
    """Rules from ``{"region": "region", "tenant": {"column": "org_id", "dataset": 3}}``."""
    rules: list[RlsRule] = []
    for attribute, target in (mapping or {}).items():
        dataset: Any = None
        if isinstance(target, str):
            column = target
        elif isinstance(target, Mapping) and isinstance(target.get("column"), str):
            column = target["column"]
            dataset = target.get("dataset")
            unknown = set(target) - {"column", "dataset"}
            if unknown:
                raise ConfigurationError(
                    setting, f"{attribute!r}: unknown key {sorted(unknown)[0]!r}"
                )
            if dataset is not None and (isinstance(dataset, bool) or not isinstance(dataset, int)):
                raise ConfigurationError(setting, f"{attribute!r}: dataset must be a dataset id")
        else:
            raise ConfigurationError(
                setting,
                f'{attribute!r}: expected a column name or {{"column": ..., "dataset": ...}}',
            )
        if not _IDENTIFIER.match(column):
            raise ConfigurationError(setting, f"{attribute!r}: {column!r} is not a column name")
        rules.append(RlsRule(attribute, column, dataset))
    return tuple(rules)


def render_rules(rules: tuple[RlsRule, ...], principal: Principal) -> list[dict[str, Any]]:
    """The ``rls`` list of a guest token for ``principal``."""
    return [rule.render(principal) for rule in rules]
