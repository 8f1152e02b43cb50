"""Reading what a page or the endpoint handed out, and checking it with the real key."""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import unquote

from embedgate import KeySet, SigningKey, verify
from tests.conftest import TEST_SECRET
from tests.support.blocks import without_binding

KEYS = KeySet([SigningKey.hmac(TEST_SECRET)])
_BLOCK = re.compile(
    r'<script type="application/json" id="embedgate-token">(.*?)</script>', re.DOTALL
)
_IFRAME_TOKEN = re.compile(r'<iframe src="[^"#]*#token=([^"&]+)"')


def claims(token: str, *, audience: str = "embedgate", issuer: str = "embedgate") -> dict[str, Any]:
    """The verified claims of a token signed with the test secret (raises otherwise)."""
    return verify(token, KEYS, audience=audience, issuer=issuer)


def blocks(page: str) -> list[Any]:
    """Every token data block of a page, decoded without its binding and browser policy
    (``None`` for a block that holds no token because issuance failed)."""
    return [without_binding(json.loads(raw)) for raw in _BLOCK.findall(page)]


def page_token(page: str) -> str | None:
    """The token of the page's one data block; None when the page has no block."""
    found = blocks(page)
    assert len(found) <= 1, "a page carries at most one token block"
    if not found:
        return None
    assert found[0] is not None, "the block is null: issuance failed"
    token: str = found[0]["token"]
    return token


def iframe_token(page: str) -> str | None:
    """The token in the generic iframe's URL fragment (rendered by embed_snippet)."""
    m = _IFRAME_TOKEN.search(page)
    return unquote(html.unescape(m.group(1))) if m else None
