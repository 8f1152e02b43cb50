"""The token request's body: its size limits and :func:`parse_token_body`, which turns it
into what the request asks for (a :class:`~embedgate.web.values.TokenAsk`) or the error
to answer. Pure: the shells read the body, bounded by ``MAX_BODY``."""

from __future__ import annotations

import json
from typing import Any, Final

from .headers import Headers, parse_content_type
from .values import SESSION_TOKEN, TokenAsk, WebResponse, error_response, invalid_field

MAX_BODY: Final = 1024  # bytes of a token request body; shells read at most one more
MAX_RESOURCE: Final = 256  # characters of a resource name
_RESOURCE_RULE: Final = f"must be a non-empty string of at most {MAX_RESOURCE} printable characters"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError("duplicate key")
        out[key] = value
    return out


def _declared_length(headers: Headers) -> int | None:
    value = headers.get(b"content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def parse_token_body(headers: Headers, body: bytes) -> TokenAsk | WebResponse:
    """What a token request asks for, from its headers and body (read bounded by the shell:
    at most ``MAX_BODY + 1`` bytes), or the error to answer.

    No body (or ``{}``): the session's token. Else ``Content-Type: application/json`` and a
    JSON object ``{"resource": "<name>"}`` of at most ``MAX_BODY`` bytes; 413 when larger, 415 for
    another type, 400 naming the field for anything else.
    """
    declared = _declared_length(headers)
    if len(body) > MAX_BODY or (declared is not None and declared > MAX_BODY):
        return error_response(413, "body_too_large", f"the body may hold at most {MAX_BODY} bytes")
    if not body:
        return SESSION_TOKEN
    media_type, params = parse_content_type(headers.get(b"content-type"))
    if media_type != "application/json" or params.get("charset", "utf-8").lower() != "utf-8":
        return error_response(415, "unsupported_media_type", "Content-Type: send application/json")
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_unique_keys)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError alike
        return invalid_field("body", "expected a JSON object (UTF-8, no duplicate keys)")
    if not isinstance(data, dict):
        return invalid_field("body", "expected a JSON object")
    if set(data) - {"resource"}:
        return invalid_field("body", "only the field 'resource' is accepted")
    if "resource" not in data:
        return SESSION_TOKEN  # {} asks for what an empty body asks for
    resource = data["resource"]
    if (
        not isinstance(resource, str)
        or not 0 < len(resource) <= MAX_RESOURCE
        or not resource.isprintable()
    ):
        return invalid_field("resource", _RESOURCE_RULE)
    return TokenAsk(resource)
