"""Row-level security clauses: values can only narrow access, never widen it — checked
against a real SQLite table."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from embedgate import ConfigurationError, Principal, PrincipalError
from embedgate.providers.rls import clause, parse_rules, render_rules, sql_literal

ROWS = [
    ("EU", "acme", 1, 1),
    ("US", "acme", 2, 0),
    ("EU", "globex", 3, 1),
    ("EU' OR '1'='1", "initech", 4, 0),  # a row whose value really is the injection text
]


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE sales (region TEXT, org TEXT, level INTEGER, active BOOLEAN)")
    conn.executemany("INSERT INTO sales VALUES (?, ?, ?, ?)", ROWS)
    yield conn
    conn.close()


def rows(db: sqlite3.Connection, where: str) -> list[tuple[object, ...]]:
    return db.execute(
        f"SELECT region, org, level FROM sales WHERE {where} ORDER BY level"
    ).fetchall()


def test_an_injection_attempt_is_a_plain_string_literal(db: sqlite3.Connection) -> None:
    text = clause("region", "attributes.region", "EU' OR '1'='1")
    assert text == "region = 'EU'' OR ''1''=''1'"
    # It matches only a row holding that exact text, not every row.
    assert rows(db, text) == [("EU' OR '1'='1", "initech", 4)]
    db.execute("DELETE FROM sales WHERE level = 4")
    assert rows(db, text) == []


def test_ordinary_values_filter_as_expected(db: sqlite3.Connection) -> None:
    assert rows(db, clause("region", "r", "EU")) == [("EU", "acme", 1), ("EU", "globex", 3)]
    assert rows(db, clause("level", "l", 2)) == [("US", "acme", 2)]
    assert rows(db, clause("active", "a", True)) == [("EU", "acme", 1), ("EU", "globex", 3)]
    assert rows(db, clause("org", "o", ("acme", "initech"))) == [
        ("EU", "acme", 1),
        ("US", "acme", 2),
        ("EU' OR '1'='1", "initech", 4),
    ]
    assert rows(db, clause("org", "o", ())) == []  # an empty list grants nothing


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (None, "NULL"),
        (True, "TRUE"),
        (False, "FALSE"),
        (7, "7"),
        (-2.5, "-2.5"),
        ("O'Brien", "'O''Brien'"),
    ],
)
def test_literals_are_typed(value: object, literal: str) -> None:
    assert sql_literal("f", value) == literal  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["EU\x00", "EU\n OR 1=1", "EU\\", "a\u2028b", "tab\there"])
def test_control_characters_and_backslashes_are_refused(value: str) -> None:
    with pytest.raises(PrincipalError) as caught:
        clause("region", "attributes.region", value)
    assert caught.value.field == "attributes.region"
    assert value not in str(caught.value)


def test_rules_render_per_dataset_and_fail_closed_when_an_attribute_is_missing() -> None:
    rules = parse_rules(
        "EMBEDGATE_SUPERSET_RLS", {"region": "region", "tenant": {"column": "org", "dataset": 12}}
    )
    principal = Principal(subject="ada", tenant="acme", attributes={"region": ["EU", "US"]})
    assert render_rules(rules, principal) == [
        {"clause": "region IN ('EU', 'US')"},
        {"clause": "org = 'acme'", "dataset": 12},
    ]
    with pytest.raises(PrincipalError) as caught:
        render_rules(rules, Principal(subject="bob", tenant="acme"))
    assert caught.value.field == "attributes.region"


@pytest.mark.parametrize(
    "mapping",
    [
        {"region": "region; DROP TABLE x"},
        {"region": {"column": "region", "dataset": "12"}},
        {"region": {"column": "region", "table": "t"}},
        {"region": 5},
    ],
)
def test_bad_rule_mappings_name_the_setting(mapping: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_rules("EMBEDGATE_SUPERSET_RLS", mapping)
    assert caught.value.setting == "EMBEDGATE_SUPERSET_RLS"
