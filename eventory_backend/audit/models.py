from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..database import UTCDateTime, utcnow
from ..extensions import Model


class AuditEvent(Model):
    """Something done with a saved login: who, when, what, and how it ended; never a secret or a
    query string. No foreign keys: events outlive the login (its former owner still reads them)
    and the accounts, until BACKEND_AUDIT_DAYS have passed."""

    __tablename__ = "audit_events"
    # A reader sees the events of logins they own, their own, and the shares offered to them: one
    # index for each, newest first, and one for each with `?login_id=`, so a page reads only its
    # own rows, however many events the table holds (services.events).
    __table_args__ = (
        Index("ix_audit_events_owner_id_id", "owner_id", "id"),
        Index("ix_audit_events_actor_id_id", "actor_id", "id"),
        Index("ix_audit_events_grantee_id_id", "grantee_id", "id"),
        Index("ix_audit_events_owner_id_login_id_id", "owner_id", "login_id", "id"),
        Index("ix_audit_events_actor_id_login_id_id", "actor_id", "login_id", "id"),
        Index("ix_audit_events_grantee_id_login_id_id", "grantee_id", "login_id", "id"),
        {"sqlite_autoincrement": True},  # ids order the pages: never reused
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(64))  # the username, kept after the account goes
    login_id: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[int] = mapped_column(Integer)  # the login's owner, who sees every event of it
    # The account a share event is about: an invitation, its answer and its end are theirs to see too.
    grantee_id: Mapped[int | None] = mapped_column(Integer, default=None)
    action: Mapped[str] = mapped_column(String(32))
    method: Mapped[str | None] = mapped_column(String(10), default=None)
    path: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[int | None] = mapped_column(Integer, default=None)
    detail: Mapped[str | None] = mapped_column(String(255), default=None)
    # Refusals of one kind by one actor on one login within a minute are one event: how many
    # (`at` and `path` the latest; services.record_refusal).
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
