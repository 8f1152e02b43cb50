"""One exception hierarchy: every error embedgate raises derives from :class:`EmbedgateError`.

Messages name the offending setting or field and what was expected. They never carry a
secret, a key or a token.
"""

from __future__ import annotations


class EmbedgateError(Exception):
    """Base class of every embedgate error."""


class ConfigurationError(EmbedgateError, ValueError):
    """A setting is missing or wrong; raised at start-up, before anything is served."""

    def __init__(self, setting: str, problem: str) -> None:
        from .secret import redact  # a quoted value may be a URL holding a password

        self.setting = setting
        self.problem = redact(problem)
        super().__init__(f"{setting}: {self.problem}")


class KeyConfigurationError(ConfigurationError):
    """A signing key does not fit its algorithm (or is unsafe)."""


class ProductionRefusedError(ConfigurationError):
    """A development-only feature (api_key mode, ``embedgate mint``) was asked for in production."""


class PrincipalError(EmbedgateError, ValueError):
    """A principal is invalid or breaks the attribute policy."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"principal.{field}: {problem}")


class TokenTooLargeError(EmbedgateError, ValueError):
    """The encoded token exceeds the configured size budget."""

    def __init__(self, size: int, budget: int) -> None:
        self.size = size
        self.budget = budget
        super().__init__(
            f"token is {size} bytes, over the size budget of {budget} bytes "
            "(EMBEDGATE_TOKEN_SIZE_BUDGET); send fewer or shorter attributes"
        )


class IssuerError(EmbedgateError):
    """Issuing a token failed (a remote provider is down, answered an error, ...).

    ``retry_after`` is a hint in seconds for clients, ``code`` a short machine-readable reason;
    ``hinted`` says the provider itself asked for that delay (a ``Retry-After`` header).
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        code: str = "issuer_error",
        status: int | None = None,
        retry_after: float | None = None,
        hinted: bool | None = None,
    ) -> None:
        self.provider = provider
        # An explicit delay is the issuer's (the provider's) wish; the default is ours.
        self.hinted = retry_after is not None if hinted is None else hinted
        self.code = code
        self.status = status
        self.retry_after = 5.0 if retry_after is None else retry_after
        super().__init__(message)


class VerificationError(EmbedgateError):
    """A token failed verification (signature, expiry, audience, issuer, algorithm...).

    ``code`` is a short machine-readable reason (``expired``, ``bad_signature``,
    ``wrong_audience``...) a provider can answer with.
    """

    def __init__(self, message: str, *, code: str = "invalid_token") -> None:
        self.code = code
        super().__init__(message)


class CacheError(EmbedgateError):
    """A shared cache backend failed (used internally to trigger the fallback)."""
