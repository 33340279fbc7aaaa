"""Recording audit events and reading them back a page at a time. Plain functions; no request in here."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import delete, insert, select, union, update
from sqlalchemy.exc import SQLAlchemyError

from ..database import utcnow
from ..extensions import db
from .models import AuditEvent

log = logging.getLogger("eventory_backend.audit")

ACTIONS = (
    "relay",
    "session",
    "share.grant",
    "share.accept",
    "share.decline",
    "share.revoke",
    "login.create",
    "login.update",
    "login.delete",
)
PATH_LIMIT = 2048
DETAIL_LIMIT = 255
PURGE_EVERY = 3600.0  # seconds between two removals of expired events, per process
FOLD_WITHIN = timedelta(minutes=1)  # refusals of one kind closer than this are one event
# An actor's newest events on a login read to find one to fold into: more than the kinds of refusal
# there are (a write of four methods, a session), so alternating kinds does not escape folding.
FOLD_LOOKBACK = 10


class Actor(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def username(self) -> str: ...


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
        "grantee_id": fields.get("grantee_id"),
    }


def record(actor: Actor, action: str, *, login_id: int, owner_id: int, **fields: Any) -> None:
    """Add an event to the current session: it is committed with the change it describes, or not at all."""
    db.session.add(AuditEvent(**_event(actor, action, login_id, owner_id, **fields)))


def record_now(actor: Actor, action: str, *, login_id: int, owner_id: int, **fields: Any) -> None:
    """Write an event about something already done elsewhere (Eventory answered, a token was
    issued), in its own transaction. If the database refuses it, the error is logged (without the
    event's path) and the caller's answer stands: Eventory has acted, and saying otherwise would
    invite the client to do it again."""
    _write(_event(actor, action, login_id, owner_id, **fields), fold=False)


def record_refusal(actor: Actor, action: str, *, login_id: int, owner_id: int, **fields: Any) -> None:
    """Write an event about a call this backend refused (a write with a read-only login, say), as
    `record_now` does; the same kind of refusal by the same actor on the same login within a
    minute of the last one adds to that event's `count` and moves its `at` (and `path`) instead of
    writing another: refusals cannot flood the owner's audit."""
    _write(_event(actor, action, login_id, owner_id, **fields), fold=True)


def _write(event: dict[str, Any], *, fold: bool) -> None:
    try:
        with db.engine.begin() as connection:
            if not (fold and _folded(connection, event)):
                connection.execute(insert(AuditEvent), [event])
    except SQLAlchemyError as error:
        log.error(
            "audit event not written action=%s login_id=%s error=%s",
            event["action"],
            event["login_id"],
            type(error).__name__,
        )
        return
    purge_if_due()


def _folded(connection, event: dict[str, Any]) -> bool:
    """Count `event` into the same kind of refusal (action, method and status) by the same actor on
    the same login, if one of the actor's FOLD_LOOKBACK newest events there is one, last refused
    less than a minute ago; it then shows the latest path. The path is the caller's to choose, so
    it does not make a refusal new: varying it cannot flood the audit. Only those newest events
    are read, from the (actor, login, id) index: the same work however many events there are."""
    newest = connection.execute(
        select(AuditEvent.id, AuditEvent.action, AuditEvent.method, AuditEvent.status, AuditEvent.at)
        .where(AuditEvent.actor_id == event["actor_id"], AuditEvent.login_id == event["login_id"])
        .order_by(AuditEvent.id.desc())
        .limit(FOLD_LOOKBACK)
    ).all()
    kind, since = (event["action"], event["method"], event["status"]), event["at"] - FOLD_WITHIN
    found = next((row.id for row in newest if (row.action, row.method, row.status) == kind and row.at >= since), None)
    if found is None:
        return False
    connection.execute(
        update(AuditEvent)
        .where(AuditEvent.id == found)
        .values(count=AuditEvent.count + 1, at=event["at"], path=event["path"])
    )
    return True


# Whose events a reader sees: those of logins they own, their own actions, and the shares offered to them.
_READERS = (AuditEvent.owner_id, AuditEvent.actor_id, AuditEvent.grantee_id)


def events(viewer_id: int, *, login_id: int | None, limit: int, before: int | None) -> tuple[list[AuditEvent], bool]:
    """The newest events `viewer_id` may see (those of logins they own, their own actions, and
    shares offered to them), older than the event id `before` when given; and whether more follow.

    Each of the three ways to see an event is read newest first from its own index, at most a page
    of each, and the pages merged: a page reads about `3 * limit` index entries, whether the
    table holds a hundred events or millions, and another reader's events are never read at all."""
    purge_if_due()
    since = cutoff()
    newest = []
    for reader in _READERS:
        query = select(AuditEvent.id).where(reader == viewer_id, AuditEvent.at >= since)
        if login_id is not None:
            query = query.where(AuditEvent.login_id == login_id)
        if before is not None:
            query = query.where(AuditEvent.id < before)
        newest.append(query.order_by(AuditEvent.id.desc()).limit(limit + 1).subquery().select())
    picked = union(*newest).subquery()
    page = select(AuditEvent).join(picked, AuditEvent.id == picked.c.id).order_by(AuditEvent.id.desc()).limit(limit + 1)
    found = list(db.session.execute(page).scalars())
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
