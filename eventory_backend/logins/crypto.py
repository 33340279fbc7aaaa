"""Eventory passwords at rest: Fernet, keys outside the database, the first key encrypts."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app

from ..settings import read_or_create

KEY_FILE = "credentials.key"


UNREADABLE = "A stored Eventory password could not be decrypted with the configured keys."


class CredentialError(Exception):
    """A stored password could not be decrypted with any configured key."""


class CredentialCipher:
    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("At least one credentials key is needed.")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                # Never echo the key itself: it is a secret.
                raise ValueError(
                    f"Credentials key number {position} is not a valid Fernet key; generate one with "
                    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
                ) from None
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise CredentialError(UNREADABLE) from None

    def rotate(self, token: str) -> str:
        """The same plaintext, encrypted under the first key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError, ValueError):
            raise CredentialError(UNREADABLE) from None


def init_app(app: Flask) -> None:
    keys = list(app.config.get("CREDENTIALS_KEYS") or [])
    if not keys:
        keys = [read_or_create(app.instance_path, KEY_FILE, lambda: Fernet.generate_key().decode("ascii"))]
    app.extensions["credential_cipher"] = CredentialCipher(keys)


def cipher() -> CredentialCipher:
    return current_app.extensions["credential_cipher"]
