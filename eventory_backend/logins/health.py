"""What the frontend shows beside a login without asking Eventory: the outcome of the broker's
last sign-in with it (`status`, `checked_at`) and where its logo is served (`logo_url`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import Flask
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..database import utcnow
from ..extensions import db
from .models import EventoryLogin

log = logging.getLogger("eventory_backend.logins")

UNKNOWN, OK, REJECTED, UNREACHABLE = "unknown", "ok", "rejected", "unreachable"
STATUSES = (UNKNOWN, OK, REJECTED, UNREACHABLE)

# Only the credentials signed in with are marked: a sign-in that read a login just before its
# username or password changed must not mark the new ones. `updated_at` is the owner's last
# edit, not the broker's: it is written back as it was.
_RECORD = (
    update(EventoryLogin)
    .where(
        EventoryLogin.id == bindparam("signed_in_id"),
        EventoryLogin.owner_id == bindparam("signed_in_owner"),
        EventoryLogin.username == bindparam("signed_in_username"),
        EventoryLogin.password_encrypted == bindparam("signed_in_sealed"),
    )
    .values(status=bindparam("outcome"), checked_at=bindparam("at"), updated_at=EventoryLogin.updated_at)
)


def record_sign_in(app: Flask, login_id: int, owner_id: int, username: str, sealed: str, status: str) -> None:
    """Remember how a sign-in with these stored credentials went. Runs in fan-out threads too
    (hence `app`); a database that cannot take it is logged, and never fails the brokered call."""
    values = {
        "signed_in_id": login_id,
        "signed_in_owner": owner_id,
        "signed_in_username": username,
        "signed_in_sealed": sealed,
        "outcome": status,
        "at": utcnow(),
    }
    try:
        with app.app_context(), db.engine.begin() as connection:
            connection.execute(_RECORD, values)
    except SQLAlchemyError as error:
        log.warning("login health not saved login_id=%s status=%s error=%s", login_id, status, type(error).__name__)


def credentials_changed(login: EventoryLogin) -> None:
    """A new username or password has not been tried yet."""
    login.status, login.checked_at = UNKNOWN, None


def statuses(login_ids: Iterable[int]) -> dict[int, str]:
    """The current status of each of `login_ids` (logins the caller was found to reach)."""
    query = select(EventoryLogin.id, EventoryLogin.status).where(EventoryLogin.id.in_(set(login_ids)))
    with db.engine.connect() as connection:
        return {login_id: status for login_id, status in connection.execute(query)}


def logo_url(login_id: int) -> str:
    """Where GET /logins/<id>/logo serves the login's organisation logo, below the backend's base."""
    return f"/logins/{login_id}/logo"
