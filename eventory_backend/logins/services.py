"""Saved Eventory logins of one owner. Plain functions; no request in here."""

from __future__ import annotations

import logging

from blinker import Namespace
from flask import current_app
from sqlalchemy import bindparam, func, select
from werkzeug.exceptions import Conflict, NotFound

from ..auth.services import account_deleting
from ..driver_queries import DriverQuery
from ..extensions import db
from . import health
from .crypto import CredentialCipher, CredentialError, cipher
from .models import EventoryLogin

log = logging.getLogger("eventory_backend.logins")


class LoginNotFound(NotFound):
    """A login the caller cannot see: another user's id is as unknown as a missing one."""

    description = "No Eventory login with that id."

    def __init__(self, login_id: int | None = None):
        super().__init__(f"No Eventory login with id {login_id}." if login_id is not None else None)


# Sent with login_id= after a login's username or password changed or it was deleted (the broker
# listens, to drop tokens no call can use any more).
login_changed = Namespace().signal("login-changed")


def announce_change(login_id: int) -> None:
    """Tell listeners (the broker's token cache) that a login changed or is gone."""
    login_changed.send(current_app._get_current_object(), login_id=login_id)  # type: ignore[attr-defined]


@account_deleting.connect
def _forget_tokens_of_deleted_account(_app, user_id: int):
    """An account is being deleted: once it is, its logins' cached Eventory tokens are forgotten."""
    login_ids = [login.id for login in list_logins(user_id)]

    def forget() -> None:
        for login_id in login_ids:
            announce_change(login_id)

    return forget


def list_logins(owner_id: int) -> list[EventoryLogin]:
    query = db.select(EventoryLogin).filter_by(owner_id=owner_id).order_by(EventoryLogin.id)
    return list(db.session.execute(query).scalars())


def count_logins(owner_id: int, login_ids: list[int] | None = None) -> int:
    """How many logins the owner has (of `login_ids`, when given)."""
    query = select(func.count()).select_from(EventoryLogin).where(EventoryLogin.owner_id == owner_id)
    if login_ids is not None:
        query = query.where(EventoryLogin.id.in_(set(login_ids)))
    return db.session.execute(query).scalar_one()


def get_login(owner_id: int, login_id: int) -> EventoryLogin:
    """The owner's login; another user's id is as unknown as a missing one."""
    login = db.session.get(EventoryLogin, login_id)
    if login is None or login.owner_id != owner_id:
        raise LoginNotFound()
    return login


# What the broker signs in with, read as one plain row (no ORM object, no session), straight
# from the driver (see driver_queries.py): the relay's main path runs it on every brokered call.
_STORED_CREDENTIALS = DriverQuery(
    select(EventoryLogin.id, EventoryLogin.owner_id, EventoryLogin.username, EventoryLogin.password_encrypted).where(
        EventoryLogin.id == bindparam("login_id"), EventoryLogin.owner_id == bindparam("owner_id")
    )
)


def stored_credentials(owner_id: int, login_id: int) -> tuple[int, int, str, str]:
    """(id, owner_id, username, password_encrypted) of the owner's login, on a connection held
    only for this query; 404 for another user's or a missing id."""
    row = _STORED_CREDENTIALS.first(db.engine, {"login_id": login_id, "owner_id": owner_id})
    if row is None:
        raise LoginNotFound()
    return tuple(row)


def add_login(owner_id: int, most: int, *, label: str, username: str, password: str, color: str) -> EventoryLogin:
    """Save a login, unless the owner already has `most` of them (409: each one is a sign-in the
    broker may make, so their number is bounded)."""
    if count_logins(owner_id) >= most:
        raise Conflict(f"You have {most} saved Eventory logins, the most this server allows; delete one first.")
    login = EventoryLogin(
        owner_id=owner_id, label=label, username=username, color=color, password_encrypted=cipher().encrypt(password)
    )
    db.session.add(login)
    db.session.commit()
    return login


def update_login(owner_id: int, login_id: int, fields: dict) -> EventoryLogin:
    login = get_login(owner_id, login_id)
    fields = dict(fields)
    credentials_changed = "password" in fields or fields.get("username", login.username) != login.username
    if "password" in fields:
        login.password_encrypted = cipher().encrypt(fields.pop("password"))
    if "username" in fields and fields["username"] != login.username:
        login.organisation = None
    if credentials_changed:
        health.credentials_changed(login)
    for name, value in fields.items():
        setattr(login, name, value)
    db.session.commit()
    if credentials_changed:
        announce_change(login_id)
    return login


def delete_login(owner_id: int, login_id: int) -> None:
    login = get_login(owner_id, login_id)
    db.session.delete(login)
    db.session.commit()
    announce_change(login_id)


def set_organisation(owner_id: int, login_id: int, organisation: str) -> None:
    """Remember the organisation Eventory reported, if the login still exists."""
    login = db.session.get(EventoryLogin, login_id)
    if login is not None and login.owner_id == owner_id and login.organisation != organisation:
        login.organisation = organisation
        db.session.commit()


def with_password(login: EventoryLogin) -> dict:
    """The login's fields and its decrypted password (None when the keys cannot read it)."""
    fields = {column.key: getattr(login, column.key) for column in EventoryLogin.__table__.columns}
    fields["password"] = readable_password(login)
    return fields


def password_cipher() -> CredentialCipher:
    """What reads stored passwords (for the broker, which decrypts one only to sign in)."""
    return cipher()


def stored_password(login: EventoryLogin) -> str:
    return cipher().decrypt(login.password_encrypted)


def readable_password(login: EventoryLogin) -> str | None:
    """The decrypted password, or None (logged by id, never by value) when no key can read it."""
    try:
        return stored_password(login)
    except CredentialError:
        log.error("stored password unreadable login_id=%s", login.id)
        return None
