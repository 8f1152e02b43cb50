"""Assertions the SP must refuse, each produced by the real IdP and posted by the browser
flow: unsigned, tampered after signing, signed by another key, expired, for another
audience, for another recipient, replayed, unsolicited. Each gets a clear error page
(400, the reason named) and no session, no token."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import httpx
import pytest

from tests.saml.conftest import (
    ALICE_OID,
    SAMLStack,
    login,
    login_page,
    page_token,
    start_login,
)
from tests.saml.idp import Pending, ResponseOptions, make_key_pair, read_form

SAME_ORIGIN = {"X-Embedgate": "1", "Sec-Fetch-Site": "same-origin"}


def assert_refused(
    stack: SAMLStack, app: httpx.Client, response: httpx.Response, code: str
) -> None:
    assert response.status_code == 400, response.text
    assert "Sign-in failed" in response.text
    assert f'<code id="code">{code}</code>' in response.text, response.text
    assert page_token(response.text) is None
    assert "set-cookie" not in response.headers  # no session was opened
    page = app.get(f"{stack.app_url}/")
    assert "Not signed in." in page.text
    assert page_token(page.text) is None
    token = app.post(f"{stack.app_url}/_embedgate/token", headers=SAME_ORIGIN)
    assert token.status_code == 401


@pytest.mark.parametrize(
    ("options", "code"),
    [
        (ResponseOptions(sign=False), "unsigned"),
        (ResponseOptions(tamper=True), "bad_signature"),
        (ResponseOptions(lifetime_minutes=-10), "expired"),
        (ResponseOptions(audience="https://other-sp.example/saml/metadata"), "wrong_audience"),
        (ResponseOptions(destination="https://other-sp.example/saml/acs"), "wrong_recipient"),
        (ResponseOptions(wrap="before"), "unsigned"),  # the forged one is refused first
        (ResponseOptions(wrap="after"), "unsigned"),
    ],
    ids=[
        "unsigned",
        "tampered",
        "expired",
        "wrong-audience",
        "wrong-recipient",
        "wrapped-before",
        "wrapped-after",
    ],
)
def test_a_bad_assertion_gets_an_error_page_and_no_token(
    saml_stack: SAMLStack, options: ResponseOptions, code: str
) -> None:
    saml_stack.idp.options = options
    app, response = login(saml_stack, "alice", "alice-password")
    assert_refused(saml_stack, app, response, code)
    if options.tamper:
        assert f"{ALICE_OID}-tampered" in saml_stack.idp.last_response_xml
    if options.wrap:
        assert ">mallory<" in saml_stack.idp.last_response_xml
    # The same IdP's correct assertion still signs in: the refusal was about the assertion.
    saml_stack.idp.options = ResponseOptions()
    app, page = login_page(saml_stack, "alice", "alice-password")
    assert page_token(page.text) is not None


def test_an_assertion_signed_with_a_key_not_in_the_idp_metadata_is_refused(
    saml_stack: SAMLStack, tmp_path: Path
) -> None:
    # The IdP signs with a new key the SP's copy of its metadata does not hold.
    key_file, cert_file = make_key_pair(tmp_path, "impostor")
    saml_stack.idp.key_file, saml_stack.idp.cert_file = key_file, cert_file
    saml_stack.idp.server = saml_stack.idp._server()
    app, response = login(saml_stack, "alice", "alice-password")
    assert_refused(saml_stack, app, response, "bad_signature")


def test_a_replayed_response_is_refused(saml_stack: SAMLStack) -> None:
    app, response = login(saml_stack, "alice", "alice-password")
    assert response.status_code == 302
    form = saml_stack.idp.last_form
    # The same browser, then another one, post the very same SAMLResponse again.
    again = app.post(f"{saml_stack.app_url}/saml/acs", data=form)
    assert again.status_code == 400
    assert '<code id="code">unsolicited</code>' in again.text
    other = httpx.Client(timeout=10)
    assert_refused(
        saml_stack, other, other.post(f"{saml_stack.app_url}/saml/acs", data=form), "unsolicited"
    )


def test_a_response_posted_from_another_browser_is_refused(saml_stack: SAMLStack) -> None:
    # Login CSRF: the attacker signs in as themselves, keeps the IdP's form, and makes the
    # victim's browser post it; the request was bound to the attacker's browser.
    attacker = httpx.Client(timeout=10)
    form_page = start_login(saml_stack, attacker)
    _action, fields = read_form(form_page.text)
    answer = httpx.post(
        f"{saml_stack.idp.base_url}/login",
        data={"ticket": fields["ticket"], "username": "bob", "password": "bob-password"},
        timeout=10,
    )
    acs, saml_fields = read_form(answer.text)
    victim = httpx.Client(timeout=10)
    victim.get(f"{saml_stack.app_url}/login")  # even one with a login of its own under way
    assert_refused(saml_stack, victim, victim.post(acs, data=saml_fields), "unsolicited")


def test_an_unsolicited_response_is_refused(saml_stack: SAMLStack) -> None:
    # A correctly signed assertion answering a request this SP never sent (IdP-initiated,
    # or a login CSRF with the attacker's own assertion).
    pending = Pending(
        f"_{secrets.token_hex(16)}",
        saml_stack.entity_id,
        f"{saml_stack.app_url}/saml/acs",
        "",
    )
    saml_response = saml_stack.idp.authn_response("alice", pending)
    app = httpx.Client(timeout=10)
    response = app.post(f"{saml_stack.app_url}/saml/acs", data={"SAMLResponse": saml_response})
    assert_refused(saml_stack, app, response, "unsolicited")


def test_garbage_is_refused(saml_stack: SAMLStack) -> None:
    app = httpx.Client(timeout=10)
    for body in ("", "not base64!", base64.b64encode(b"<nope/>").decode()):
        response = app.post(f"{saml_stack.app_url}/saml/acs", data={"SAMLResponse": body})
        assert_refused(saml_stack, app, response, "invalid")
