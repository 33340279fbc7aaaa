"""Saved Eventory logins: their owner's, and those shared with other accounts (shares.py makes
the shares). Plain functions; no request in here."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from blinker import Namespace
from flask import current_app
from sqlalchemy import bindparam, func, or_, select
from werkzeug.exceptions import Conflict, Forbidden, NotFound

from ..audit import services as audit
from ..audit.services import Actor
from ..auth.services import account_deleting
from ..database.driver_queries import DriverQuery
from ..extensions import db
from . import health
from .crypto import CredentialCipher, CredentialError, cipher
from .models import MANAGE, OWNER, EventoryLogin, LoginShare
from .read_model import CALLERS_SHARE, visible_logins

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
    """The owner's own logins (not those shared with them)."""
    query = db.select(EventoryLogin).filter_by(owner_id=owner_id).order_by(EventoryLogin.id)
    return list(db.session.execute(query).scalars())


def _usable_by(user_id: int):
    """The condition a login `user_id` may broker with meets: their own, or shared with them (and
    accepted: an invitation reaches nothing)."""
    shared = select(LoginShare.login_id).where(LoginShare.grantee_id == user_id, LoginShare.accepted.is_(True))
    return or_(EventoryLogin.owner_id == user_id, EventoryLogin.id.in_(shared))


def usable_logins(user_id: int) -> list[EventoryLogin]:
    """The logins `user_id` may broker with: their own and those shared with them, by id."""
    query = db.select(EventoryLogin).where(_usable_by(user_id)).order_by(EventoryLogin.id)
    return list(db.session.execute(query).scalars())


def count_logins(owner_id: int, login_ids: list[int] | None = None) -> int:
    """How many logins the owner has (of `login_ids`, when given)."""
    query = select(func.count()).select_from(EventoryLogin).where(EventoryLogin.owner_id == owner_id)
    if login_ids is not None:
        query = query.where(EventoryLogin.id.in_(set(login_ids)))
    return db.session.execute(query).scalar_one()


def count_usable(user_id: int, login_ids: list[int] | None = None) -> int:
    """How many logins `user_id` may broker with (of `login_ids`, when given), counted by the
    database (no login is loaded just to be counted)."""
    query = select(func.count()).select_from(EventoryLogin).where(_usable_by(user_id))
    if login_ids is not None:
        query = query.where(EventoryLogin.id.in_(set(login_ids)))
    return db.session.execute(query).scalar_one()


@dataclass(frozen=True)
class Access:
    """A login as one caller reaches it: as its owner, or through a share (`use` or `manage`)."""

    login: EventoryLogin
    role: str

    def require(self, *roles: str, refusal: str) -> None:
        """403 with `refusal` unless the caller's role is one of `roles`."""
        if self.role not in roles:
            raise Forbidden(refusal)


def access(user_id: int, login_id: int) -> Access:
    """How `user_id` reaches the login; 404 when they cannot see it at all (another user's id is
    as unknown as a missing one)."""
    login = db.session.get(EventoryLogin, login_id)
    if login is None:
        raise LoginNotFound()
    if login.owner_id == user_id:
        return Access(login, OWNER)
    share = db.session.execute(
        select(LoginShare).where(
            LoginShare.login_id == login_id, LoginShare.grantee_id == user_id, LoginShare.accepted.is_(True)
        )
    ).scalar_one_or_none()
    if share is None:
        raise LoginNotFound()
    return Access(login, share.role)


def login_view(user_id: int, login_id: int) -> dict:
    """The login as `user_id` sees it, in LoginSchema's shape (no username for a `use` grantee)."""
    found = visible_logins(user_id, login_id)
    if not found:
        raise LoginNotFound()
    return found[0]


# What the broker signs in with, read as one plain row (no ORM object, no session), straight
# from the driver (see database/driver_queries.py): the relay's main path runs it on every brokered call.
# The caller's own login, or one shared with them (an accepted share); the share is looked up in the
# same query, so a revoked share ends access on the very next call, on every instance.
_STORED_CREDENTIALS = DriverQuery(
    select(
        EventoryLogin.id,
        EventoryLogin.owner_id,
        EventoryLogin.username,
        EventoryLogin.password_encrypted,
        EventoryLogin.read_only,
    )
    .outerjoin(LoginShare, CALLERS_SHARE)
    .where(
        EventoryLogin.id == bindparam("login_id"),
        or_(EventoryLogin.owner_id == bindparam("user_id"), LoginShare.id.is_not(None)),
    )
)


@dataclass(frozen=True)
class StoredCredentials:
    login_id: int
    owner_id: int
    username: str
    sealed_password: str
    read_only: bool

    def __repr__(self) -> str:  # never print the password, even encrypted
        return f"StoredCredentials(login_id={self.login_id})"


def stored_credentials(user_id: int, login_id: int) -> StoredCredentials:
    """The login `user_id` may broker with (their own or shared with them), on a connection held
    only for this query; 404 for one they cannot see or a missing id."""
    row = _STORED_CREDENTIALS.first(db.engine, {"login_id": login_id, "user_id": user_id})
    if row is None:
        raise LoginNotFound()
    login_id, owner_id, username, sealed, read_only = row
    return StoredCredentials(login_id, owner_id, username, sealed, bool(read_only))


def add_login(actor: Actor, most: int, *, read_only: bool = False, **fields: str) -> int:
    """Save a login, unless the owner already has `most` of them (409: each one is a sign-in the
    broker may make, so their number is bounded); its id."""
    if count_logins(actor.id) >= most:
        raise Conflict(f"You have {most} saved Eventory logins, the most this server allows; delete one first.")
    password = fields.pop("password")
    login = EventoryLogin(
        owner_id=actor.id, read_only=read_only, password_encrypted=cipher().encrypt(password), **fields
    )
    db.session.add(login)
    db.session.flush()
    login_id = login.id  # read before the commit: after it, reading it would open a transaction again
    audit.record(actor, "login.create", login_id=login_id, owner_id=actor.id, status=201)
    db.session.commit()
    return login_id


def update_login(actor: Actor, login_id: int, fields: dict) -> None:
    """Change a login (its owner or a manager); the audit names the fields that changed, never their values."""
    grant = access(actor.id, login_id)
    grant.require(OWNER, MANAGE, refusal="Only the login's owner and its managers may change it.")
    login = grant.login
    fields = dict(fields)
    changed = sorted(name for name, value in fields.items() if name == "password" or getattr(login, name) != value)
    credentials_changed = "password" in changed or "username" in changed
    if "password" in fields:
        login.password_encrypted = cipher().encrypt(fields.pop("password"))
    if "username" in changed:
        login.organisation = None
    if credentials_changed:
        health.credentials_changed(login)
    for name, value in fields.items():
        setattr(login, name, value)
    detail = ", ".join(changed) if changed else "nothing changed"
    audit.record(actor, "login.update", login_id=login_id, owner_id=login.owner_id, status=200, detail=detail)
    db.session.commit()
    if credentials_changed:
        announce_change(login_id)


def delete_login(actor: Actor, login_id: int) -> None:
    """Forget a login (its owner only); its shares go with it."""
    grant = access(actor.id, login_id)
    grant.require(OWNER, refusal="Only the login's owner may delete it.")
    audit.record(actor, "login.delete", login_id=login_id, owner_id=actor.id, status=204)
    db.session.delete(grant.login)
    db.session.commit()
    announce_change(login_id)


def set_organisation(owner_id: int, login_id: int, organisation: str) -> None:
    """Remember the organisation Eventory reported, if the login still exists."""
    login = db.session.get(EventoryLogin, login_id)
    if login is not None and login.owner_id == owner_id and login.organisation != organisation:
        login.organisation = organisation
        db.session.commit()


def with_passwords(user_id: int) -> list[dict]:
    """The logins `user_id` sees, each of their own with its decrypted password (None when the
    keys cannot read it); a login shared with them never carries one."""
    passwords = {login.id: readable_password(login) for login in list_logins(user_id)}
    return [
        login if login["shared"] else {**login, "password": passwords.get(login["id"])}
        for login in visible_logins(user_id)
    ]


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
