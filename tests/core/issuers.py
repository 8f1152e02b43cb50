"""Real issuers and cache backends with knobs for the tests: a LocalSigner that counts (and
can be slow or fail), and a plain dict cache that keeps entries past their deadline."""

from __future__ import annotations

import threading
import time
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from dataclasses import replace
from typing import Any

import anyio

from embedgate import EmbedToken, IssueRequest, IssuerError, KeySet, LocalSigner
from tests.core.conftest import AUDIENCE, ISSUER, signing_key


class CountingSigner(LocalSigner):
    """A LocalSigner that counts its mints, may sleep first, and may be told to fail."""

    def __init__(
        self,
        keys: KeySet | None = None,
        *,
        delay: float = 0.0,
        single_use: bool = False,
        **options: Any,
    ) -> None:
        options.setdefault("issuer", ISSUER)
        options.setdefault("audience", AUDIENCE)
        super().__init__(keys or KeySet([signing_key("HS256")]), **options)
        self.delay = delay
        self.single_use = single_use
        self.failure: IssuerError | None = None
        self.calls = 0
        self._lock = threading.Lock()

    def _count(self) -> None:
        with self._lock:
            self.calls += 1

    def _finish(self, request: IssueRequest) -> EmbedToken:
        if self.failure is not None:
            raise self.failure
        token = super().issue(request)
        return replace(token, single_use=True) if self.single_use else token

    def issue(self, request: IssueRequest) -> EmbedToken:
        self._count()
        if self.delay:
            time.sleep(self.delay)
        return self._finish(request)

    async def aissue(self, request: IssueRequest) -> EmbedToken:
        self._count()
        if self.delay:
            await anyio.sleep(self.delay)
        return self._finish(request)


def provider_down(retry_after: float = 5.0) -> IssuerError:
    return IssuerError(
        "provider answered 503", provider="generic", code="upstream_unavailable",
        status=503, retry_after=retry_after,
    )  # fmt: skip


class DictCache:
    """A minimal CacheBackend that ignores deadlines: the service alone must refuse stale
    or foreign tokens."""

    def __init__(self) -> None:
        self.entries: dict[str, EmbedToken] = {}

    def get(self, key: str) -> EmbedToken | None:
        return self.entries.get(key)

    def set(self, key: str, token: EmbedToken, deadline: float) -> None:
        self.entries[key] = token

    def invalidate(self, *, session_tag: str | None = None, subject: str | None = None) -> int:
        doomed = [
            key
            for key, token in self.entries.items()
            if (session_tag is not None or subject is not None)
            and (session_tag is None or token.session_tag == session_tag)
            and (subject is None or token.subject == subject)
        ]
        for key in doomed:
            del self.entries[key]
        return len(doomed)

    def exclusive(self, key: str) -> AbstractContextManager[bool]:
        return nullcontext(True)

    async def aget(self, key: str) -> EmbedToken | None:
        return self.get(key)

    async def aset(self, key: str, token: EmbedToken, deadline: float) -> None:
        self.set(key, token, deadline)

    async def ainvalidate(
        self, *, session_tag: str | None = None, subject: str | None = None
    ) -> int:
        return self.invalidate(session_tag=session_tag, subject=subject)

    def aexclusive(self, key: str) -> AbstractAsyncContextManager[bool]:
        return nullcontext(True)
