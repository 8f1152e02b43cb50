"""Secrets and tokens stay out of reprs, strings, errors and pickles."""

from __future__ import annotations

import copy
import pickle

import pytest

from embedgate import (
    Config,
    EmbedgateError,
    Engine,
    KeySet,
    LocalSigner,
    Principal,
    Secret,
    SigningKey,
)
from tests.core.material import private_pem, public_pem

HMAC_SECRET = "hmac-secret-value-that-must-never-leak-0123"
API_KEY = "api-key-value-that-must-never-leak-0123456"
OLD_SECRET = "old-secret-value-that-must-never-leak-01234"


def _leaks(text: str, *values: str) -> list[str]:
    return [value for value in values if value in text]


def test_secret_masks_itself_everywhere() -> None:
    secret = Secret(HMAC_SECRET)
    for text in (
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        repr([secret]),
        repr({"k": secret}),
    ):
        assert HMAC_SECRET not in text
        assert "**********" in text
    assert secret.reveal() == HMAC_SECRET
    assert secret.reveal_bytes() == HMAC_SECRET.encode()
    assert len(secret) == len(HMAC_SECRET)
    assert secret == Secret(HMAC_SECRET.encode()) != Secret("other")


@pytest.mark.parametrize("copier", [pickle.dumps, copy.copy, copy.deepcopy])
def test_secret_cannot_be_pickled_or_copied_out(copier: object) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        copier(Secret(HMAC_SECRET))  # type: ignore[operator]


def test_a_config_holding_secrets_cannot_be_pickled() -> None:
    config = Config.load(environ={}, secret=HMAC_SECRET)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(config)


def test_config_repr_and_str_show_only_whether_secrets_are_set() -> None:
    pem = private_pem("P-256").decode()
    config = Config.load(
        environ={},
        secret=HMAC_SECRET,
        previous_secrets=OLD_SECRET,
        api_key=API_KEY,
        audience="superset",
    )
    for text in (repr(config), str(config)):
        assert not _leaks(text, HMAC_SECRET, OLD_SECRET, API_KEY)
        assert "secret=<set>" in text
        assert "api_key=<set>" in text
        assert "audience='superset'" in text
    keyed = Config.load(environ={}, private_key=pem)
    assert "BEGIN" not in repr(keyed)
    assert "private_key=<set>" in repr(keyed)


def test_engine_and_its_parts_never_show_key_material() -> None:
    engine = Engine.from_settings({"EMBEDGATE_SECRET": HMAC_SECRET}, environ={})
    token = engine.token_for(Principal(subject="alice"), "session")
    assert token is not None
    texts = [
        repr(engine), str(engine), repr(engine.config), repr(engine.service),
        repr(engine.service.issuer), repr(engine.service.cache), repr(token), str(token),
    ]  # fmt: skip
    for text in texts:
        assert not _leaks(text, HMAC_SECRET, token.token), text


def test_asymmetric_parts_never_show_the_private_key() -> None:
    pem = private_pem("P-256")
    key = SigningKey.private(pem, "ES256")
    keys = KeySet([key])
    signer = LocalSigner(keys, issuer="i", audience="a")
    body = pem.decode().splitlines()[1]
    for text in (repr(key), repr(keys), repr(signer)):
        assert body not in text
        assert "BEGIN" not in text


@pytest.mark.parametrize(
    "material",
    [HMAC_SECRET[:20], "-----BEGIN PUBLIC KEY-----" + "A" * 60],
)
def test_key_errors_never_quote_the_key(material: str) -> None:
    with pytest.raises(EmbedgateError) as caught:
        SigningKey.hmac(material)
    assert material not in str(caught.value)
    assert material[:20] not in str(caught.value)


def test_private_key_errors_never_quote_the_pem() -> None:
    pem = public_pem("RSA-2048").decode()
    with pytest.raises(EmbedgateError) as caught:
        Engine.from_settings({"EMBEDGATE_PRIVATE_KEY": pem}, environ={})
    assert pem.splitlines()[1] not in str(caught.value)
