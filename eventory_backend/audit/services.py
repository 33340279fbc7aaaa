"""Recording audit events and reading them back a page at a time. Plain functions; no request in here."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import delete, insert, or_, select
from sqlalchemy.exc import SQLAlchemyError

from ..database import utcnow
from ..extensions import db
from .models import AuditEvent

log = logging.getLogger("eventory_backend.audit")

ACTIONS = ("relay", "session", "share.grant", "share.revoke", "login.create", "login.update", "login.delete")
PATH_LIMIT = 2048
DETAIL_LIMIT = 255
PURGE_EVERY = 3600.0  # seconds between two removals of expired events, per process


class Actor(Protocol):
    id: int
    username: str


def _event(actor: Actor, action: str, login_id: int, owner_id: int, **fields: Any) -> dict[str, Any]:
    assert action in ACTIONS, action
    path, detail = fields.get("path"), fields.get("detail")
    return {
        "at": utcnow(),
        "actor_id": actor.id,
        "actor": actor.username,
        "login_id": login_id,
        "owner_id": owner_id,
        "action": action,
        "method": fields.get("method"),
        "path": path[:PATH_LIMIT] if path is not None else None,
        "status": fields.get("status"),
        "detail": detail[:DETAIL_LIMIT] if detail is not None else None,
    }


def record(actor: Actor, action: str, *, login_id: int, owner_id: int, **fields: Any) -> None:
    """Add an event to the current session: it is committed with the change it describes, or not at all."""
    db.session.add(AuditEvent(**_event(actor, action, login_id, owner_id, **fields)))


def record_now(actor: Actor, action: str, *, login_id: int, owner_id: int, **fields: Any) -> None:
    """Write an event about something already done elsewhere (Eventory answered, a token was
    issued), in its own transaction. If the database refuses it, the error is logged (without the
    event's path) and the caller's answer stands: Eventory has acted, and saying otherwise would
    invite the client to do it again."""
    try:
        with db.engine.begin() as connection:
            connection.execute(insert(AuditEvent), [_event(actor, action, login_id, owner_id, **fields)])
    except SQLAlchemyError as error:
        log.error("audit event not written action=%s login_id=%s error=%s", action, login_id, type(error).__name__)
        return
    purge_if_due()


def events(viewer_id: int, *, login_id: int | None, limit: int, before: int | None) -> tuple[list[AuditEvent], bool]:
    """The newest events `viewer_id` may see (those of logins they own, and their own actions),
    older than the event id `before` when given; and whether more follow."""
    purge_if_due()
    query = (
        select(AuditEvent)
        .where(or_(AuditEvent.owner_id == viewer_id, AuditEvent.actor_id == viewer_id))
        .where(AuditEvent.at >= cutoff())
        .order_by(AuditEvent.id.desc())
        .limit(limit + 1)
    )
    if login_id is not None:
        query = query.where(AuditEvent.login_id == login_id)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    found = list(db.session.execute(query).scalars())
    return found[:limit], len(found) > limit


def cutoff():
    """Events older than this are expired: never shown, and removed by `purge_if_due`."""
    return utcnow() - timedelta(days=current_app.config["AUDIT_DAYS"])


_purge_lock = threading.Lock()
NEXT_PURGE = "eventory_audit_next_purge"  # app.extensions: when this process next removes (monotonic)


def purge_if_due() -> None:
    """Remove expired events, at most once every PURGE_EVERY seconds in this process."""
    extensions = current_app.extensions
    now = time.monotonic()
    with _purge_lock:
        if extensions.get(NEXT_PURGE, 0.0) > now:
            return
        extensions[NEXT_PURGE] = now + PURGE_EVERY
    purge()


def purge() -> int:
    """Remove the events older than BACKEND_AUDIT_DAYS; how many went."""
    try:
        with db.engine.begin() as connection:
            return connection.execute(delete(AuditEvent).where(AuditEvent.at < cutoff())).rowcount
    except SQLAlchemyError as error:  # tried again at the next PURGE_EVERY; the events stay hidden meanwhile
        log.warning("expired audit events not removed error=%s", type(error).__name__)
        return 0
