"""What Redis holds of a token, and how subjects appear there.

Subjects never reach Redis in clear: index names and invalidation messages carry a keyed
hash (:meth:`ValueCodec.subject_tag`, HMAC-SHA256 under a key derived from the engine), so
a reader of Redis cannot confirm a guessed e-mail address. With encryption on (the default
when the engine has a secret), a value is AES-GCM over the token's JSON, bound to the key
it is stored under: Redis holds neither the live token nor the subject, and an entry copied
under another key does not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..token import EmbedToken

_SEALED: Final = "e1:"
_NONCE: Final = 12


class ValueCodec:
    """Encodes cached tokens for Redis. ``tag_key`` keys the subject hashes (None: a plain
    SHA-256, for caches built without an engine); ``cipher_key`` (32 bytes) turns on
    encryption at rest."""

    __slots__ = ("_aead", "_tag_key")

    def __init__(self, *, tag_key: bytes | None = None, cipher_key: bytes | None = None) -> None:
        self._tag_key = tag_key
        self._aead = AESGCM(cipher_key) if cipher_key is not None else None

    @property
    def encrypts(self) -> bool:
        return self._aead is not None

    def subject_tag(self, subject: str) -> str:
        """The keyed hash standing for ``subject`` in index names and messages."""
        data = subject.encode("utf-8")
        if self._tag_key is None:
            return hashlib.sha256(b"embedgate subject\x00" + data).hexdigest()
        return hmac.new(self._tag_key, data, hashlib.sha256).hexdigest()

    def encode(self, name: str, token: EmbedToken) -> str:
        text = json.dumps(token.to_json(), separators=(",", ":"))
        if self._aead is None:
            return text
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, text.encode("utf-8"), name.encode("utf-8"))
        return _SEALED + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decode(self, name: str, raw: Any) -> EmbedToken:
        """The token stored under ``name``; ValueError if unreadable, sealed under another
        key or name, or (with encryption on) not sealed at all."""
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        if text.startswith(_SEALED):
            if self._aead is None:
                raise ValueError("an encrypted entry, and encryption is off")
            blob = base64.urlsafe_b64decode(text[len(_SEALED) :])
            try:
                plain = self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], name.encode("utf-8"))
            except InvalidTag:
                raise ValueError("sealed under another key or name") from None
            text = plain.decode("utf-8")
        elif self._aead is not None:
            raise ValueError("a plain entry, and encryption is on")
        return EmbedToken.from_json(json.loads(text))

    def __repr__(self) -> str:
        return f"ValueCodec(encrypts={self.encrypts})"
