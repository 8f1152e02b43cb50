"""Claim layouts: how a principal becomes the non-registered claims of a token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .issuer import IssueRequest

REGISTERED_CLAIMS: Final = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})

ClaimsLayout = Callable[[IssueRequest], dict[str, Any]]


def generic_claims(request: IssueRequest) -> dict[str, Any]:
    """embedgate's own layout: identity fields at the top, user attributes under
    ``attributes`` (so an attribute can never collide with a registered claim)."""
    data = request.principal.to_dict()
    data.pop("subject")
    if request.resource is not None:
        data["resource"] = request.resource
    return data
