from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..database import UTCDateTime, exact_string, utcnow
from ..extensions import Model


class User(Model):
    __tablename__ = "users"
    # Ids reach clients and key cached state: never hand a deleted row's id to a new one.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    # The username folded for comparison; its unique index makes `Ann` and `ann` one account (and
    # only those: compared exactly, whatever the database's collation).
    username_key: Mapped[str] = mapped_column(exact_string(256), unique=True)
    password_hash: Mapped[str] = mapped_column(String(128))
    # Every token carries the generation it was issued in; raising it ends them all
    # (log out everywhere, password change), in every instance and after restarts.
    token_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TokenFamily(Model):
    """One login's chain of refresh tokens, and the access tokens issued with them."""

    __tablename__ = "token_families"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    revoked: Mapped[bool] = mapped_column(default=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class RefreshToken(Model):
    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    family_id: Mapped[str] = mapped_column(ForeignKey("token_families.id", ondelete="CASCADE"), index=True)
    used: Mapped[bool] = mapped_column(default=False)
    # When it was traded: a second use within BACKEND_REFRESH_GRACE_SECONDS is a concurrent tab.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class RevokedToken(Model):
    """Access tokens ended one by one (logout); kept until they would have expired anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
