"""Accounts: registration, password checks, tokens. Plain functions; no request in here."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets

from blinker import Namespace
from flask import current_app
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import Conflict, Forbidden, Unauthorized, UnprocessableEntity

from ..extensions import bcrypt, db
from ..observability.logging import loggable
from ..web.fields import folded
from .models import User
from .policy import normalize, password_problems
from .tokens import issue_tokens, revoke_all

log = logging.getLogger("eventory_backend.auth")

# Sent with user_id= while an account is being deleted, before its rows go. A receiver may return
# a callable, which is called once the deletion is committed (the logins use it to forget the
# deleted logins' cached Eventory tokens).
account_deleting = Namespace().signal("account-deleting")


def username_key(username: str) -> str:
    """The unique form of a username: `Ann` and `ann` are one account."""
    return folded(username)


def _prehash(password: str) -> bytes:
    # bcrypt reads only 72 bytes (bcrypt 5 raises past them): hash the whole NFKC-normalised
    # password first; base64 keeps the 32-byte digest free of NUL bytes. Fixed since day one.
    normalized = normalize(password)
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


def get_account(user_id: int) -> User:
    """The row of the signed-in account, for views that show or change it."""
    user = db.session.get(User, user_id)
    if user is None:
        raise Unauthorized("The account for this token no longer exists; log in again.")
    return user


def find_user(username: str) -> User | None:
    return db.session.execute(db.select(User).filter_by(username_key=username_key(username))).scalar_one_or_none()


def authenticate(username: str, password: str, client_address: str = "-") -> User:
    user = find_user(username)
    if user is None:
        check_password(_dummy_hash(), password)
    if user is None or not check_password(user.password_hash, password):
        # One line per failure, for fail2ban and the like; never the password.
        log.warning(
            "login failed address=%s username=%s", client_address, loggable(username, 100).replace(" ", "?") or "-"
        )
        raise Unauthorized("Incorrect username or password.")
    return user


def verify_password(user: User, password: str) -> None:
    """403 unless `password` is the user's current one (a re-check inside a session, not a login)."""
    if not check_password(user.password_hash, password):
        raise Forbidden("The current password is not right.")


def change_password(user: User, current_password: str, new_password: str) -> dict:
    """Set a new password, end every other token, and hand the caller a fresh pair."""
    verify_password(user, current_password)
    problems = password_problems(new_password, user.username)
    if problems:
        raise PolicyViolation(problems)
    set_password(user, new_password)
    return issue_tokens(user)


def set_password(user: User, new_password: str) -> None:
    user.password_hash = hash_password(new_password)
    revoke_all(user)


def delete_account(user: User) -> None:
    """The user, their Eventory logins (ON DELETE CASCADE) and any cached Eventory tokens go."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    when_deleted = [after for _receiver, after in account_deleting.send(app, user_id=user.id) if callable(after)]
    db.session.delete(user)
    db.session.commit()
    for after in when_deleted:
        after()


class PolicyViolation(UnprocessableEntity):
    def __init__(self, problems: list[str]):
        super().__init__(problems[0])
        self.data = {"message": problems[0], "errors": {"new_password": problems}}
