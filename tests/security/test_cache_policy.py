"""The one rule for token responses' headers, attacked with arbitrary header lists:
whatever an app sent, in any letter case, nothing a shared cache obeys survives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from embedgate.web.cache_policy import private_headers
from tests.security.headers import HOSTILE, as_str, assert_private

_NAMES = st.sampled_from(
    [n for n, _ in HOSTILE] + ["Content-Type", "Set-Cookie", "X-App", "Content-Length"]
)
_CASED = _NAMES.flatmap(
    lambda n: st.lists(st.booleans(), min_size=len(n), max_size=len(n)).map(
        lambda flips: "".join(c.upper() if f else c.lower() for c, f in zip(n, flips, strict=True))
    )
)
_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


@given(st.lists(st.tuples(_CASED, _VALUES), max_size=20))
def test_private_headers_leave_no_directive_for_a_shared_cache(
    headers: list[tuple[str, str]],
) -> None:
    raw = [(n.encode(), v.encode()) for n, v in headers]
    out = as_str(private_headers(raw))
    assert_private(out)
    kept = [(n, v) for n, v in headers if n.lower() in ("content-type", "set-cookie", "x-app")]
    assert [p for p in out if p[0].lower() in ("content-type", "set-cookie", "x-app")] == kept
