"""Accounts: registration, password checks, tokens. Plain functions; no request in here."""

from __future__ import annotations

import base64
import hashlib
import secrets
import unicodedata

from flask import current_app
from flask_jwt_extended import create_access_token
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import Conflict, Unauthorized

from ..extensions import bcrypt, db
from .models import User


def username_key(username: str) -> str:
    return unicodedata.normalize("NFKC", username.strip()).casefold()


def _prehash(password: str) -> bytes:
    # bcrypt reads only 72 bytes (bcrypt 5 raises past them): hash the whole NFKC-normalised
    # password first; base64 keeps the 32-byte digest free of NUL bytes. Fixed since day one.
    normalized = unicodedata.normalize("NFKC", password)
    return base64.b64encode(hashlib.sha256(normalized.encode("utf-8")).digest())


def hash_password(password: str) -> str:
    return bcrypt.generate_password_hash(_prehash(password)).decode("ascii")


def check_password(password_hash: str, password: str) -> bool:
    return bcrypt.check_password_hash(password_hash, _prehash(password))


def _dummy_hash() -> str:
    """A hash at the configured cost, so an unknown username costs what a wrong password costs."""
    cached = current_app.extensions.get("dummy_password_hash")
    if cached is None:
        cached = hash_password(secrets.token_urlsafe(24))
        current_app.extensions["dummy_password_hash"] = cached
    return cached


def register_user(username: str, password: str) -> User:
    user = User(username=username.strip(), username_key=username_key(username), password_hash=hash_password(password))
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("That username is already taken.") from None
    return user


def authenticate(username: str, password: str) -> User:
    user = db.session.execute(db.select(User).filter_by(username_key=username_key(username))).scalar_one_or_none()
    if user is None:
        check_password(_dummy_hash(), password)
        raise Unauthorized("Incorrect username or password.")
    if not check_password(user.password_hash, password):
        raise Unauthorized("Incorrect username or password.")
    return user


def issue_token(user: User) -> dict:
    expires = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    return {
        "access_token": create_access_token(identity=str(user.id)),
        "token_type": "bearer",
        "expires_in": int(expires.total_seconds()),
    }
