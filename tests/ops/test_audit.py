"""The audit trail: one event per token issued and per purge, on the ``embedgate.audit``
logger (fields in ``extra``) and through a hook; keyed hashes, never identities."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from pythonjsonlogger.json import JsonFormatter
from starlette.testclient import TestClient

from embedgate import ConfigurationError, ManualClock, Principal
from embedgate.audit import AUDIT_LOGGER, AuditTrail
from tests.conftest import TEST_SECRET
from tests.ops import hooks
from tests.ops.apps import ALICE, TOKEN_HEADERS, app, engine

FIELDS = {
    "event",
    "time",
    "provider",
    "mode",
    "reason",
    "jti",
    "expires_at",
    "tenant",
    "resource",
    "claims",
    "attributes",
    "subject_hash",
    "session_hash",
    "single_use",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def audit_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == AUDIT_LOGGER]


@pytest.fixture
def audit_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    return caplog


def test_first_page_refresh_and_logout(audit_log: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(1_800_000_000.0)
    eng = engine(clock, audit_hook=hooks.collect)
    hooks.EVENTS.clear()
    with TestClient(app(eng)) as client:
        page = client.get("/")
        first = client.post("/_embedgate/token", headers=TOKEN_HEADERS).json()
        clock.advance(first["refresh_in"] + 1)
        second = client.post("/_embedgate/token", headers=TOKEN_HEADERS).json()
        session = client.cookies["embedgate_session"]
    assert eng.logout(session) == 1

    records = audit_records(audit_log)
    assert [r.event for r in records] == ["token_issued", "token_issued", "tokens_purged"]  # type: ignore[attr-defined]
    issued, refreshed, purged = (r.__dict__ for r in records)
    assert set(issued) >= FIELDS
    assert issued["reason"] == "first_page"
    assert refreshed["reason"] == "refresh"
    assert issued["provider"] == "generic"
    assert issued["mode"] == "token"
    assert issued["tenant"] == "acme"
    assert issued["expires_at"] == "2027-01-15T08:05:00Z"
    assert issued["time"] == "2027-01-15T08:00:00Z"
    assert {"sub", "exp", "iat", "jti", "aud", "iss"} <= set(issued["claims"])
    assert issued["attributes"] == ["level", "region"]
    assert issued["jti"]
    assert issued["jti"] != refreshed["jti"]
    assert issued["session_hash"] == refreshed["session_hash"] == purged["session_hash"]
    assert issued["subject_hash"] == refreshed["subject_hash"]
    assert issued["subject_hash"] == eng.service.audit.digest("subject", "alice")
    assert purged["reason"] == "logout"
    assert purged["count"] == 1
    # Never an identity, a value or a token.
    for record in records:
        text = json.dumps(record.__dict__, default=str) + record.getMessage()
        for secret in ("alice", session, first["token"], second["token"], "EU", TEST_SECRET):
            assert secret not in text, secret
    assert [
        {k: v for k, v in r.__dict__.items() if k in FIELDS | {"count"}} for r in records
    ] == hooks.EVENTS
    assert page.status_code == 200


def test_a_resource_grant_and_a_subject_purge(audit_log: pytest.LogCaptureFixture) -> None:
    eng = engine(ManualClock())
    eng.service.get_token(ALICE, "session-1", resource="sales")
    eng.service.get_token(ALICE, "session-2")
    assert eng.service.invalidate_subject("alice") == 2
    issued_grant, issued_page, purged = (r.__dict__ for r in audit_records(audit_log))
    assert issued_grant["reason"] == "resource_grant"
    assert issued_grant["resource"] == "sales"
    assert issued_page["reason"] == "first_page"
    assert purged["reason"] == "subject_changed"
    assert purged["subject_hash"] == issued_page["subject_hash"]
    assert purged["session_hash"] is None
    assert purged["count"] == 2


@pytest.mark.anyio
async def test_the_async_face_audits_too(audit_log: pytest.LogCaptureFixture) -> None:
    eng = engine(ManualClock())
    await eng.service.aget_token(ALICE, "s")
    assert await eng.service.ainvalidate_session("s") == 1
    assert [r.event for r in audit_records(audit_log)] == ["token_issued", "tokens_purged"]  # type: ignore[attr-defined]


def test_hashes_are_keyed() -> None:
    clock = ManualClock()
    same_secret = [engine(clock).service.audit for _ in range(2)]
    assert same_secret[0].digest("subject", "alice") == same_secret[1].digest("subject", "alice")
    keyed = engine(clock, audit_key="k" * 32).service.audit
    other = engine(clock, secret="another-secret-0123456789abcdef-0123").service.audit
    digests = {a.digest("subject", "alice") for a in (same_secret[0], keyed, other)}
    assert len(digests) == 3
    assert same_secret[0].digest("subject", "alice") != same_secret[0].digest("session", "alice")
    assert "k" * 32 not in repr(keyed)


def test_the_hook_by_name_and_a_broken_hook(caplog: pytest.LogCaptureFixture) -> None:
    hooks.EVENTS.clear()
    eng = engine(ManualClock(), EMBEDGATE_AUDIT_HOOK="tests.ops.hooks:collect")
    eng.service.get_token(ALICE, "s")
    assert [e["event"] for e in hooks.EVENTS] == ["token_issued"]
    broken = engine(ManualClock(), audit_hook="tests.ops.hooks:explode")
    assert broken.service.get_token(ALICE, "s").token  # the request still gets its token
    assert "the audit hook raised" in caplog.text
    with pytest.raises(ConfigurationError) as caught:
        engine(ManualClock(), audit_hook="tests.ops.hooks:nowhere")
    assert caught.value.setting == "EMBEDGATE_AUDIT_HOOK"


def test_nothing_is_built_when_nobody_listens() -> None:
    trail = AuditTrail(provider="generic")
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.WARNING)
    try:
        assert not trail.enabled
    finally:
        logging.getLogger(AUDIT_LOGGER).setLevel(logging.NOTSET)


def test_json_logging_with_python_json_logger() -> None:
    """The set-up the README shows: every field a key of one JSON object per line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("{asctime}{levelname}{name}{message}", style="{"))
    logger = logging.getLogger(AUDIT_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        engine(ManualClock()).service.get_token(
            Principal(subject="bob", attributes={"region": "US"}), "s"
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    (line,) = stream.getvalue().splitlines()
    event: dict[str, Any] = json.loads(line)
    assert event["name"] == AUDIT_LOGGER
    assert event["event"] == "token_issued"
    assert event["attributes"] == ["region"]
    assert set(event) >= FIELDS
    assert "bob" not in line
