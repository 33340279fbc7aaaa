from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, false, true
from sqlalchemy.orm import Mapped, mapped_column

from ..database import UTCDateTime, utcnow
from ..extensions import Model

# How an account reaches a login: its owner; or through a share, to broker with it (`use`, who
# sees neither its username nor its password) or also to change it (`manage`, who sees the username).
OWNER, USE, MANAGE = "owner", "use", "manage"
SHARE_ROLES = (USE, MANAGE)


class EventoryLogin(Model):
    __tablename__ = "eventory_logins"
    # Ids reach clients and key cached state: never hand a deleted row's id to a new one.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    username: Mapped[str] = mapped_column(String(254))
    # Fernet token of the Eventory password; never the password itself.
    password_encrypted: Mapped[str] = mapped_column(Text)
    color: Mapped[str] = mapped_column(String(64))
    organisation: Mapped[str | None] = mapped_column(String(255), default=None)
    # The broker sends only GET and HEAD with a read-only login, and hands out no Eventory token for it.
    read_only: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The last sign-in's outcome (logins/health.py): unknown, ok, rejected or unreachable, and when.
    status: Mapped[str] = mapped_column(String(16), default="unknown", server_default="unknown")
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Optimistic locking: of two updates racing on one row, the second gets a 409, never a silent overwrite.
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


class LoginShare(Model):
    """Another account may use (`use`) or also change (`manage`) a login; it never reads the password.
    Until that account accepts it, a share is an invitation and reaches nothing."""

    __tablename__ = "login_shares"
    __table_args__ = (UniqueConstraint("login_id", "grantee_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    login_id: Mapped[int] = mapped_column(ForeignKey("eventory_logins.id", ondelete="CASCADE"), index=True)
    grantee_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    # New shares wait for the grantee; those made before invitations existed stay accepted.
    accepted: Mapped[bool] = mapped_column(default=False, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ShareDecline(Model):
    """An invitation the grantee declined: the owner cannot send that login to them again for a day."""

    __tablename__ = "share_declines"
    __table_args__ = (UniqueConstraint("login_id", "grantee_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    login_id: Mapped[int] = mapped_column(ForeignKey("eventory_logins.id", ondelete="CASCADE"))
    grantee_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    declined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
