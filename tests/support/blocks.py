"""Reading the token data block in tests that look at the token, not at the binding."""

from __future__ import annotations

from typing import Any


def without_binding(block: Any) -> Any:
    """The block without its per-response ``bind`` and the profile's ``allow`` (both checked
    for shape here); ``None`` for a block that holds no token because issuance failed (what
    the block said before it carried a binding)."""
    if not isinstance(block, dict):
        return block
    block = dict(block)
    bind = block.pop("bind")
    assert isinstance(bind, str)
    assert len(bind) >= 16
    assert isinstance(block.pop("allow"), dict)
    if block.keys() == {"token", "endpoint"} and block["token"] is None:
        return None
    return block
