"""Weak secrets disguised by letter case or typed along a keyboard row are still weak."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedgate import ConfigurationError, Engine
from embedgate.keys import secret_weakness

DISGUISED = [
    "ChangeMeCHANGEMEchangemeChangeMe",
    "PassWordPASSWORDpasswordPassWord",
    "SecretKeySECRETKEYsecretkeySecretKey",
    "qwertyuiopasdfghjklzxcvbnm123456",
    "QWERTYUIOPasdfghjklZXCVBNM1234567890",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9",
    "poiuytrewqlkjhgfdsamnbvcxz098765",
]


@pytest.mark.parametrize("secret", DISGUISED)
def test_case_and_keyboard_disguises_are_refused(secret: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Engine.from_settings(environ={}, secret=secret)
    assert caught.value.setting == "EMBEDGATE_SECRET"
    assert "embedgate keygen" in str(caught.value)
    assert secret not in str(caught.value)


@settings(max_examples=60)
@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=3, max_size=12),
    st.lists(st.booleans(), min_size=40, max_size=40),
)
def test_a_repeated_unit_in_random_letter_case_is_refused(unit: str, upper: list[bool]) -> None:
    text = (unit.encode() * 64)[:40]
    mixed = bytes(
        ord(chr(b).upper()) if up and 97 <= b <= 122 else b
        for b, up in zip(text, upper, strict=True)
    )
    assert secret_weakness(mixed) is not None


def test_random_secrets_still_pass() -> None:
    for _ in range(300):
        for make in (secrets.token_urlsafe, secrets.token_hex, secrets.token_bytes):
            for size in (32, 48):
                value = make(size)
                raw = value if isinstance(value, bytes) else value.encode()
                assert secret_weakness(raw) is None, value
