"""embedgate: short-lived, signed embed tokens for embedded analytics, as drop-in
ASGI/WSGI middleware.

The names here are the ones users type. The entry points load on first use, so an
optional framework (Flask) is only imported by the application that asks for it::

    from embedgate import EmbedgateMiddleware       # ASGI: Starlette, FastAPI, Django ASGI
    from embedgate import EmbedgateWSGIMiddleware   # WSGI: Werkzeug, Flask, Django WSGI
    from embedgate import EmbedGate                 # Flask extension (embedgate[flask])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .cache import CacheBackend, MemoryCache
from .clock import Clock, ManualClock
from .config import Config
from .errors import (
    CacheError,
    ConfigurationError,
    EmbedgateError,
    IssuerError,
    KeyConfigurationError,
    PrincipalError,
    ProductionRefusedError,
    TokenTooLargeError,
    VerificationError,
)
from .keys import KeySet, SigningKey
from .mapping import ClaimMapping, principal_from_user
from .principal import AttributePolicy, Principal
from .secret import Secret
from .token import EmbedToken
from .verify import verify

if TYPE_CHECKING:
    from .asgi import EmbedgateMiddleware as EmbedgateMiddleware
    from .clock import SystemClock as SystemClock
    from .engine import Engine as Engine
    from .integrations.flask import EmbedGate as EmbedGate
    from .issuers.base import Issuer as Issuer
    from .issuers.base import IssueRequest as IssueRequest
    from .issuers.signer import LocalSigner as LocalSigner
    from .issuers.signer import generic_claims as generic_claims
    from .service import TokenService as TokenService
    from .service import TokenTiming as TokenTiming
    from .wsgi import EmbedgateWSGIMiddleware as EmbedgateWSGIMiddleware

__version__ = "0.1.0"

# Loaded on first access: the entry points (so optional frameworks stay optional), and
# building blocks for custom issuers and tests, importable here but not part of __all__.
_LAZY = {
    "EmbedgateMiddleware": "embedgate.asgi",
    "EmbedgateWSGIMiddleware": "embedgate.wsgi",
    "EmbedGate": "embedgate.integrations.flask",
    "Engine": "embedgate.engine",
    "Issuer": "embedgate.issuers.base",
    "IssueRequest": "embedgate.issuers.base",
    "LocalSigner": "embedgate.issuers.signer",
    "generic_claims": "embedgate.issuers.signer",
    "SystemClock": "embedgate.clock",
    "TokenService": "embedgate.service",
    "TokenTiming": "embedgate.service",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'embedgate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AttributePolicy",
    "CacheBackend",
    "CacheError",
    "ClaimMapping",
    "Clock",
    "Config",
    "ConfigurationError",
    "EmbedGate",
    "EmbedToken",
    "EmbedgateError",
    "EmbedgateMiddleware",
    "EmbedgateWSGIMiddleware",
    "IssuerError",
    "KeyConfigurationError",
    "KeySet",
    "ManualClock",
    "MemoryCache",
    "Principal",
    "PrincipalError",
    "ProductionRefusedError",
    "Secret",
    "SigningKey",
    "TokenTooLargeError",
    "VerificationError",
    "__version__",
    "principal_from_user",
    "verify",
]
