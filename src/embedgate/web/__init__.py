"""Sans-I/O web layer: pure decisions over status, headers and body bytes.

No ASGI/WSGI or framework imports and no I/O here; the middleware shells drive these. The
values an adapter passes in and gets back are re-exported here (loaded on first use).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .gate import WebGate as WebGate
    from .headers import Headers as Headers
    from .templating import PageHelpers as PageHelpers
    from .values import PagePlan as PagePlan
    from .values import SessionDecision as SessionDecision
    from .values import TokenAsk as TokenAsk
    from .values import WebRequest as WebRequest
    from .values import WebResponse as WebResponse

_LAZY = {
    "WebGate": "embedgate.web.gate",
    "Headers": "embedgate.web.headers",
    "PageHelpers": "embedgate.web.templating",
    "PagePlan": "embedgate.web.values",
    "SessionDecision": "embedgate.web.values",
    "TokenAsk": "embedgate.web.values",
    "WebRequest": "embedgate.web.values",
    "WebResponse": "embedgate.web.values",
}

__all__ = [
    "Headers",
    "PageHelpers",
    "PagePlan",
    "SessionDecision",
    "TokenAsk",
    "WebGate",
    "WebRequest",
    "WebResponse",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'embedgate.web' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
