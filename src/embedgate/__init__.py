"""embedgate: short-lived, signed embed tokens for embedded analytics, as drop-in
ASGI/WSGI middleware."""

from __future__ import annotations

from .cache import CacheBackend, MemoryCache
from .clock import Clock, ManualClock, SystemClock
from .config import Config
from .engine import Engine
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
from .issuers.base import Issuer, IssueRequest
from .issuers.signer import LocalSigner, generic_claims
from .keys import KeySet, SigningKey
from .mapping import ClaimMapping, principal_from_user
from .principal import AttributePolicy, Principal
from .secret import Secret
from .service import TokenService, TokenTiming
from .token import EmbedToken
from .verify import verify

__version__ = "0.1.0"

__all__ = [
    "AttributePolicy",
    "CacheBackend",
    "CacheError",
    "ClaimMapping",
    "Clock",
    "Config",
    "ConfigurationError",
    "EmbedToken",
    "EmbedgateError",
    "Engine",
    "IssueRequest",
    "Issuer",
    "IssuerError",
    "KeyConfigurationError",
    "KeySet",
    "LocalSigner",
    "ManualClock",
    "MemoryCache",
    "Principal",
    "PrincipalError",
    "ProductionRefusedError",
    "Secret",
    "SigningKey",
    "SystemClock",
    "TokenService",
    "TokenTiming",
    "TokenTooLargeError",
    "VerificationError",
    "__version__",
    "generic_claims",
    "principal_from_user",
    "verify",
]
