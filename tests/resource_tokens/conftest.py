"""Fixtures of the resource-bound token tests: engines for the profiles whose tokens are
bound to one dashboard (Metabase static embedding, Looker) and a clean environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest

from embedgate import Config, Engine, ManualClock, Principal
from embedgate.cache import MemoryCache
from tests.conftest import TEST_SECRET

METABASE_SECRET = "3ace80c8efdce0349dee4627f3366757002b818121c8d9050d9095a639f4db0e"
LOOKER_SECRET = "9d15e0e2b42656ee4d70e10a9803953422face004d7557f430e2c783eb4d3413"
METABASE_SITE = "https://metabase.example.com"
LOOKER_SITE = "https://looker.example.com"
ALICE = {"sub": "alice", "email": "alice@example.com"}


def metabase_settings(site: str = METABASE_SITE, **extra: str) -> dict[str, str]:
    return {
        "EMBEDGATE_PROVIDER": "metabase",
        "EMBEDGATE_PROVIDER_URL": site,
        "EMBEDGATE_SECRET": METABASE_SECRET,
        **{f"EMBEDGATE_{k.upper()}": v for k, v in extra.items()},
    }


def looker_settings(**extra: str) -> dict[str, str]:
    return {
        "EMBEDGATE_PROVIDER": "looker",
        "EMBEDGATE_PROVIDER_URL": LOOKER_SITE,
        "EMBEDGATE_SECRET": LOOKER_SECRET,
        "EMBEDGATE_LOOKER_MODELS": "thelook",
        **{f"EMBEDGATE_{k.upper()}": v for k, v in extra.items()},
    }


def generic_settings(**extra: str) -> dict[str, str]:
    return {
        "EMBEDGATE_SECRET": TEST_SECRET,
        **{f"EMBEDGATE_{k.upper()}": v for k, v in extra.items()},
    }


def build(mapping: Mapping[str, Any], clock: ManualClock | None = None, **kw: Any) -> Engine:
    """An engine from ``mapping`` only (the environment is not read)."""
    config = Config.load(mapping, environ={})
    if clock is not None:
        kw["clock"] = clock
    return Engine(config, config_source=mapping, environ={}, **kw)


def cache_size(engine: Engine) -> int:
    """Entries in the engine's in-process cache (tokens and grant markers)."""
    cache = engine.service.cache
    assert isinstance(cache, MemoryCache)
    return len(cache)


def principal_of(engine: Engine, user: Mapping[str, Any] = ALICE) -> Principal:
    principal = engine.principal_for(dict(user))
    assert principal is not None
    return principal


@pytest.fixture(autouse=True)
def embedgate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings a developer exported must not leak into these tests."""
    for name in list(os.environ):
        if name.startswith("EMBEDGATE_"):
            monkeypatch.delenv(name)
