"""Testing toolkit for host apps: read and check the embed token a response carries, move
embedgate's clock, and run against in-process fake providers.

Installed as a pytest plugin (fixtures ``embedgate_clock``, ``embedgate_fake_toucan``,
``embedgate_fake_superset``, ``embedgate_audit_events``); the helpers import from here::

    from embedgate.testing import assert_embed_token

    def test_dashboard(client):
        client.post("/login", data={"username": "alice", "password": "demo"})
        assert_embed_token(client.get("/"), sub="alice", attributes={"region": "EU"})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._apps import find_engine
from ._clock import manual_clock
from ._responses import assert_embed_token, embed_data, extract_token, token_claims

if TYPE_CHECKING:
    from ._fakes import FakeSuperset, FakeToucan

__all__ = [
    "FakeSuperset",
    "FakeToucan",
    "assert_embed_token",
    "embed_data",
    "extract_token",
    "find_engine",
    "manual_clock",
    "token_claims",
]


def __getattr__(name: str) -> Any:
    # The fakes need httpx (embedgate[http]); the rest of the toolkit does not.
    if name in ("FakeToucan", "FakeSuperset"):
        from . import _fakes

        return getattr(_fakes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
