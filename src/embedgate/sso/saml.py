"""SAML 2.0 service-provider helpers for pysaml2 (``embedgate[saml]``).

- :func:`pysaml2_claims`: the claims of a verified ``saml2.response.AuthnResponse`` with
  the attribute names the IdP sent (URIs kept; the ``FriendlyName`` too), the NameID and
  the IdP session (``session_index``), ready for the ``saml``/``azure-ad-saml`` presets;
- :class:`SAMLRequestState`: the SP's outstanding AuthnRequest IDs (``InResponseTo``),
  each taken once, and the assertion IDs already consumed: a replayed response is refused.
  In memory, or in Redis when several workers share it;
- :func:`saml_error_code`: a short, stable reason for a refused response (never its XML);
- :func:`saml_logout`: a verified IdP ``LogoutRequest`` -> :meth:`SSOSessions.end`.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterable
from typing import Any, Final, Protocol

from cachetools import TTLCache

from .readers import Claims
from .sessions import EndResult, SSOSessions

DEFAULT_TTL: Final = 600.0  # seconds an AuthnRequest waits for its response


class _Redis(Protocol):
    def set(self, name: str, value: str, *, ex: int, nx: bool = ...) -> Any: ...
    def getdel(self, name: str) -> Any: ...


def _text(element: Any) -> str | None:
    text = getattr(element, "text", None)
    return text.strip() if isinstance(text, str) and text.strip() else None


def pysaml2_claims(response: Any) -> Claims:
    """Claims from a verified pysaml2 ``AuthnResponse``.

    Every ``Attribute`` of the assertion appears under its ``Name`` (a URI such as
    ``http://schemas.microsoft.com/ws/2008/06/identity/claims/groups`` or
    ``urn:oid:0.9.2342.19200300.100.1.3``) and, when it has one, its ``FriendlyName``;
    values are always lists (multi-valued groups stay whole). ``nameid``,
    ``nameid_format``, ``session_index`` and ``iss`` (the IdP's entity id) are added.
    """
    assertion = response.assertion
    claims: Claims = {}
    for statement in getattr(assertion, "attribute_statement", None) or ():
        for attribute in statement.attribute or ():
            values = [v for v in (_text(value) for value in attribute.attribute_value) if v]
            for name in (attribute.name, attribute.friendly_name):
                if name:
                    claims.setdefault(name, []).extend(values)
    subject = assertion.subject
    name_id: Any = getattr(subject, "name_id", None)
    nameid = _text(name_id)
    if nameid:
        claims["nameid"] = nameid
        if name_id.format:
            claims["nameid_format"] = name_id.format
    for statement in assertion.authn_statement or ():
        if statement.session_index:
            claims["session_index"] = statement.session_index
            break
    issuer = _text(assertion.issuer) or _text(getattr(response.response, "issuer", None))
    if issuer:
        claims["iss"] = issuer
    return claims


def _digest(secret: str | None) -> str | None:
    return hashlib.sha256(secret.encode()).hexdigest() if secret else None


class SAMLRequestState:
    """Outstanding AuthnRequests and consumed assertions, shared by the SP's workers when
    ``redis`` (a ``redis.Redis`` client) is given.

    :meth:`add` remembers a request ID (with the page to return to and, optionally, a
    secret the starting browser keeps in a cookie); :meth:`take` hands it back once, and
    only to that browser, so a second response to the same request, or a response posted
    from another browser (login CSRF with the attacker's own assertion), is refused;
    :meth:`first_use` is true once per assertion ID.
    """

    def __init__(
        self,
        *,
        redis: _Redis | None = None,
        ttl: float = DEFAULT_TTL,
        maxsize: int = 100_000,
        prefix: str = "embedgate:saml:",
    ) -> None:
        self.redis = redis
        self.ttl = ttl
        self.prefix = prefix
        self._lock = threading.Lock()
        self._memory: TTLCache[str, str] = TTLCache(maxsize, ttl)

    def _put(self, key: str, value: str, ttl: float) -> bool:
        if self.redis is not None:
            return bool(self.redis.set(self.prefix + key, value, ex=max(1, int(ttl)), nx=True))
        with self._lock:
            if key in self._memory:
                return False
            self._memory[key] = value
            return True

    def add(self, request_id: str, relay_state: str = "/", *, browser: str | None = None) -> None:
        """Remember an AuthnRequest this SP sent (``browser``: the secret of the browser
        that started it; only its digest is stored)."""
        value = json.dumps({"next": relay_state, "browser": _digest(browser)})
        self._put(f"req:{request_id}", value, self.ttl)

    def take(self, request_id: str, *, browser: str | None = None) -> str | None:
        """The relay state of an outstanding request, removing it; None if unknown,
        already answered, or bound to another browser than ``browser``'s secret."""
        key = f"req:{request_id}"
        if self.redis is not None:
            raw = self.redis.getdel(self.prefix + key)
            value = raw.decode() if isinstance(raw, bytes) else raw
        else:
            with self._lock:
                value = self._memory.pop(key, None)
        if not isinstance(value, str):
            return None
        stored = json.loads(value)
        bound = stored.get("browser")
        if bound is not None and not hmac.compare_digest(bound, _digest(browser) or ""):
            return None
        next_url = stored.get("next")
        return next_url if isinstance(next_url, str) else None

    def first_use(self, assertion_id: str, ttl: float | None = None) -> bool:
        """True the first time an assertion ID is seen (within ``ttl``, by default the
        request lifetime; use the assertion's remaining validity when longer)."""
        return self._put(f"assertion:{assertion_id}", "1", ttl or self.ttl)

    def __repr__(self) -> str:
        return f"SAMLRequestState(shared={self.redis is not None})"


# pysaml2 signals most failures with generic exceptions: these message fragments (spaces
# and underscores removed, lower case) name them, tried in order after the exception types.
_UNSIGNED: Final = ("signaturemissing", "notsigned", "unsigned")
_TYPES: Final = {
    "ResponseLifetimeExceed": "expired",
    "ToEarly": "not_yet_valid",
    "UnsolicitedResponse": "unsolicited",
    "SignatureError": "bad_signature",
    "IncorrectlySigned": "bad_signature",
}
_MESSAGES: Final = (
    ("audience", "wrong_audience"),
    ("recipient", "wrong_recipient"),
    ("destination", "wrong_recipient"),
    ("lifetime", "expired"),
    ("notonorafter", "expired"),
    ("unsolicited", "unsolicited"),
    ("signature", "bad_signature"),
    ("signed", "bad_signature"),
)


def saml_error_code(error: BaseException) -> str:
    """A short reason for a response pysaml2 refused: ``unsigned``, ``bad_signature``,
    ``expired``, ``not_yet_valid``, ``wrong_audience``, ``wrong_recipient``,
    ``unsolicited`` or ``invalid``."""
    message = str(error).lower().replace(" ", "").replace("_", "")
    if any(fragment in message for fragment in _UNSIGNED):
        return "unsigned"
    for kind in type(error).__mro__:
        if kind.__name__ in _TYPES:
            return _TYPES[kind.__name__]
    return next((code for fragment, code in _MESSAGES if fragment in message), "invalid")


def _instant(value: str | None) -> float | None:
    if not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def diagnose_response(
    xml: str | bytes,
    *,
    acs_url: str,
    entity_id: str,
    now: float | None = None,
    slack: float = 60.0,
) -> str:
    """Why pysaml2 refused a response it answered with ``None`` (it logs the reason but
    does not raise): read from the *unverified* XML, for the error page only. Returns
    ``wrong_recipient``, ``expired``, ``not_yet_valid``, ``wrong_audience``, ``unsigned``
    or ``invalid``."""
    from saml2.samlp import response_from_string

    try:
        response = response_from_string(xml)
    except Exception:
        return "invalid"
    if response is None:
        return "invalid"
    now = time.time() if now is None else now
    if response.destination and response.destination != acs_url:
        return "wrong_recipient"
    for assertion in response.assertion or ():
        confirmations = getattr(assertion.subject, "subject_confirmation", None) or ()
        data = [c.subject_confirmation_data for c in confirmations if c.subject_confirmation_data]
        if any(d.recipient and d.recipient != acs_url for d in data):
            return "wrong_recipient"
        conditions = assertion.conditions
        ends = [d.not_on_or_after for d in data]
        ends += [s.session_not_on_or_after for s in assertion.authn_statement or ()]
        if conditions is not None:
            ends.append(conditions.not_on_or_after)
            start = _instant(conditions.not_before)
            if start is not None and start > now + slack:
                return "not_yet_valid"
        if any((end := _instant(e)) is not None and end <= now - slack for e in ends):
            return "expired"
        audiences = [
            audience.text
            for restriction in (conditions.audience_restriction if conditions else None) or ()
            for audience in restriction.audience or ()
        ]
        if audiences and entity_id not in audiences:
            return "wrong_audience"
        if assertion.signature is None and response.signature is None:
            return "unsigned"
    return "invalid"


def saml_logout(
    sessions: SSOSessions,
    *,
    issuer: str,
    name_id: str | None,
    session_indexes: Iterable[str] = (),
) -> EndResult:
    """End what a verified ``LogoutRequest`` names: each IdP session (``SessionIndex``),
    or every session of the NameID when it lists none, and the NameID's tokens in every
    process (the subject purge) when the mapping reads the subject from ``nameid``."""
    indexes = [index for index in session_indexes if index]
    ended, tokens = 0, 0
    for index in indexes:
        result = sessions.end(issuer=issuer, sid=index)
        ended, tokens = ended + result.sessions, tokens + result.tokens
    if name_id:
        result = sessions.end(issuer=issuer, sub=name_id)
        ended, tokens = ended + result.sessions, tokens + result.tokens
    return EndResult(sessions=ended, tokens=tokens)
