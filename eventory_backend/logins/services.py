"""Saved Eventory logins of one owner. Plain functions; no request in here."""

from __future__ import annotations

from werkzeug.exceptions import NotFound

from ..extensions import db
from .crypto import cipher
from .models import EventoryLogin

NOT_FOUND = "No Eventory login with that id."


def list_logins(owner_id: int) -> list[EventoryLogin]:
    query = db.select(EventoryLogin).filter_by(owner_id=owner_id).order_by(EventoryLogin.id)
    return list(db.session.execute(query).scalars())


def get_login(owner_id: int, login_id: int) -> EventoryLogin:
    """The owner's login; another user's id is as unknown as a missing one."""
    login = db.session.get(EventoryLogin, login_id)
    if login is None or login.owner_id != owner_id:
        raise NotFound(NOT_FOUND)
    return login


def add_login(owner_id: int, *, label: str, username: str, password: str, color: str) -> EventoryLogin:
    login = EventoryLogin(
        owner_id=owner_id, label=label, username=username, color=color, password_encrypted=cipher().encrypt(password)
    )
    db.session.add(login)
    db.session.commit()
    return login


def update_login(owner_id: int, login_id: int, fields: dict) -> EventoryLogin:
    login = get_login(owner_id, login_id)
    fields = dict(fields)
    if "password" in fields:
        login.password_encrypted = cipher().encrypt(fields.pop("password"))
    if "username" in fields and fields["username"] != login.username:
        login.organisation = None
    for name, value in fields.items():
        setattr(login, name, value)
    db.session.commit()
    return login


def delete_login(owner_id: int, login_id: int) -> None:
    login = get_login(owner_id, login_id)
    db.session.delete(login)
    db.session.commit()


def stored_password(login: EventoryLogin) -> str:
    return cipher().decrypt(login.password_encrypted)
