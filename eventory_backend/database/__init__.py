"""The database's shared parts: the declarative base, the UTC timestamp type, utcnow, the string
type that compares exactly, and the settings every SQLite connection gets. The `db` handle itself
is in extensions.py."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, String, event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator


class Base(DeclarativeBase):
    """What every model derives from (through `extensions.db.Model`)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


MYSQL_FAMILY = frozenset({"mysql", "mariadb"})


def exact_string(length: int) -> String:
    """VARCHAR(length) that compares exactly on every database. MySQL's default collations ignore
    case and accents, so a unique index there would make `ada` and `adá` one value."""
    return String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), *MYSQL_FAMILY)


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime with microseconds on every database; SQLite and MySQL alone would
    hand back naive ones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect):
        if dialect.name in MYSQL_FAMILY:
            # MySQL's DATETIME has no time zone (UTC is stored) and keeps no fraction unless asked.
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return super().load_dialect_impl(dialect)

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("Store aware datetimes only.")
        if value is None:
            return None
        if dialect.name in MYSQL_FAMILY:
            # Some MySQL drivers write an aware value's offset into the literal; the column holds UTC.
            return value.astimezone(UTC).replace(tzinfo=None)
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        # PostgreSQL answers in its session's TimeZone; the API always speaks UTC.
        return value.astimezone(UTC)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """Foreign keys (for ON DELETE CASCADE), WAL and a busy timeout on every SQLite connection."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()
