"""Configuration: defaults in `Config`, overridden by `BACKEND_*` variables.

Every setting docs/configuration.md documents is listed once in `SETTINGS`, with the type its
environment value is parsed as. Nothing here reads the environment at import time:
`create_app` calls `from_environ()` when it builds an application.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

MIB = 1024 * 1024


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


def _int(value: str) -> int:
    return int(value.strip())


def _positive(value: str) -> int:
    number = int(value.strip())
    if number < 1:
        raise ValueError("expected a whole number of at least 1")
    return number


def _float(value: str) -> float:
    return float(value.strip())


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _str(value: str) -> str:
    return value.strip()


def _cpus(value: str) -> str | list[int]:
    """`auto`, `off`, or CPU numbers separated by commas."""
    lowered = value.strip().lower()
    if lowered in {"auto", "off"}:
        return lowered
    numbers = [int(item) for item in _list(value)]
    if not numbers or min(numbers) < 0:
        raise ValueError("expected auto, off or CPU numbers")
    return numbers


# environment variable (without the BACKEND_ prefix) -> (config key, parser)
SETTINGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "SECRET_KEY": ("SECRET_KEY", _str),
    "ACCESS_TOKEN_EXPIRE_MINUTES": ("ACCESS_TOKEN_EXPIRE_MINUTES", _int),
    "REFRESH_TOKEN_EXPIRE_DAYS": ("REFRESH_TOKEN_EXPIRE_DAYS", _int),
    "REFRESH_GRACE_SECONDS": ("REFRESH_GRACE_SECONDS", _int),
    "DATABASE_URL": ("SQLALCHEMY_DATABASE_URI", _str),
    "CORS_ORIGINS": ("CORS_ORIGINS", _list),
    "EVENTORY_URL": ("EVENTORY_URL", _str),
    "CREDENTIALS_KEYS": ("CREDENTIALS_KEYS", _list),
    "PASSWORD_MIN_LENGTH": ("PASSWORD_MIN_LENGTH", _int),
    "REGISTRATION_OPEN": ("REGISTRATION_OPEN", _bool),
    "MAX_CONTENT_LENGTH": ("MAX_CONTENT_LENGTH", _int),
    "CPU_AFFINITY": ("CPU_AFFINITY", _cpus),
    "PROXY_PUBLIC": ("PROXY_PUBLIC", _bool),
    "PROXY_MAX_BODY": ("PROXY_MAX_BODY", _int),
    "PROXY_CONNECT_TIMEOUT": ("PROXY_CONNECT_TIMEOUT", _float),
    "PROXY_READ_TIMEOUT": ("PROXY_READ_TIMEOUT", _float),
    "EVENTORY_TOKEN_TTL": ("EVENTORY_TOKEN_TTL", _int),
    "EVENTORY_REJECTION_BACKOFF": ("EVENTORY_REJECTION_BACKOFF", _int),
    "FANOUT_CONCURRENCY": ("FANOUT_CONCURRENCY", _int),
    "FANOUT_TIMEOUT": ("FANOUT_TIMEOUT", _float),
    "FANOUT_MAX_BYTES": ("FANOUT_MAX_BYTES", _int),
    "STALE_IF_ERROR": ("STALE_IF_ERROR", _int),
    "STALE_CACHE_BYTES": ("STALE_CACHE_BYTES", _int),
    "LOGINS_EXPOSE_PASSWORDS": ("LOGINS_EXPOSE_PASSWORDS", _bool),
    "HOST": ("HOST", _str),
    "PORT": ("PORT", _int),
    "THREADS": ("THREADS", _int),
    "CONNECTION_LIMIT": ("CONNECTION_LIMIT", _int),
    "CHANNEL_TIMEOUT": ("CHANNEL_TIMEOUT", _int),
    "PROXY_SEND_TIMEOUT": ("PROXY_SEND_TIMEOUT", _float),
    "RATELIMIT_ENABLED": ("RATELIMIT_ENABLED", _bool),
    "RATELIMIT_LOGIN": ("RATELIMIT_LOGIN", _str),
    "RATELIMIT_REGISTER": ("RATELIMIT_REGISTER", _str),
    "RATELIMIT_PROXY": ("RATELIMIT_PROXY", _str),
    "RATELIMIT_LOGINS_WRITE": ("RATELIMIT_LOGINS_WRITE", _str),
    "MAX_LOGINS_PER_USER": ("MAX_LOGINS_PER_USER", _int),
    "RATELIMIT_STORAGE_URI": ("RATELIMIT_STORAGE_URI", _str),
    "TRUSTED_PROXIES": ("TRUSTED_PROXIES", _list),
    "RATELIMIT_PASSWORD": ("RATELIMIT_PASSWORD", _str),
    "METRICS": ("METRICS", _bool),
    "LOG_LEVEL": ("LOG_LEVEL", _str),
    "AUTO_MIGRATE": ("AUTO_MIGRATE", _bool),
    "AUDIT_DAYS": ("AUDIT_DAYS", _positive),
    "RATELIMIT_AUDIT": ("RATELIMIT_AUDIT", _str),
    "MAX_PENDING_SHARES": ("MAX_PENDING_SHARES", _positive),
}


class Config:
    """Defaults for a single machine: SQLite in the instance folder, open registration."""

    SECRET_KEY: str | None = None  # None: generated once into the instance folder
    ACCESS_TOKEN_EXPIRE_MINUTES = 1440
    REFRESH_TOKEN_EXPIRE_DAYS = 30
    REFRESH_GRACE_SECONDS = 5  # a refresh token used again this soon is a second tab, not a thief
    SQLALCHEMY_DATABASE_URI: str | None = None  # None: instance/eventory_backend.db
    CORS_ORIGINS = ["*"]
    EVENTORY_URL = "https://api.eventory.se"
    CREDENTIALS_KEYS: list[str] = []  # empty: one key generated into the instance folder
    PASSWORD_MIN_LENGTH = 15
    REGISTRATION_OPEN = True
    MAX_CONTENT_LENGTH = 1 * MIB
    PROXY_PUBLIC = False
    PROXY_MAX_BODY = 50 * MIB
    PROXY_CONNECT_TIMEOUT = 5.0
    PROXY_READ_TIMEOUT = 30.0
    EVENTORY_TOKEN_TTL = 15 * 60
    # Credentials Eventory rejected are not tried again for this long (unless they change).
    EVENTORY_REJECTION_BACKOFF = 15 * 60
    FANOUT_CONCURRENCY = 16
    FANOUT_TIMEOUT = 20.0
    FANOUT_MAX_BYTES = 10 * MIB  # Eventory's answers one /multisite call holds, all logins together
    # Seconds a brokered GET's last 200 may stand in while Eventory is down (0: never); kept in
    # memory, this many bytes at most per process.
    STALE_IF_ERROR = 300
    STALE_CACHE_BYTES = 32 * MIB
    LOGINS_EXPOSE_PASSWORDS = False
    AUDIT_DAYS = 90  # audit events older than this are removed
    HOST = "127.0.0.1"
    PORT = 8000
    # Relayed requests mostly wait on Eventory; threads are cheap next to that wait.
    THREADS = 64
    # `python wsgi.py` keeps its threads on one core (see web/server.py): "auto", "off" or CPU numbers.
    CPU_AFFINITY: str | list[int] = "auto"
    # Open connections waitress keeps (below 512: select() on Windows takes no more).
    CONNECTION_LIMIT = 500
    CHANNEL_TIMEOUT = 30  # seconds a connection may stay silent before it is closed
    PROXY_SEND_TIMEOUT = 30.0  # seconds a relayed answer may wait on a client that does not read
    RATELIMIT_ENABLED = True
    RATELIMIT_LOGIN = "10/minute"
    RATELIMIT_REGISTER = "10/hour"
    RATELIMIT_PROXY = "600/minute"
    RATELIMIT_LOGINS_WRITE = "60/minute"  # saving, changing, deleting logins, per user
    MAX_LOGINS_PER_USER = 100
    MAX_PENDING_SHARES = 50  # invitations one account may hold unanswered
    RATELIMIT_AUDIT = "60/minute"  # pages of GET /audit, per user
    RATELIMIT_PASSWORD = "5/minute"  # noqa: S105 - a limit, not a password
    RATELIMIT_STORAGE_URI = "memory://"
    TRUSTED_PROXIES: list[str] = []
    AUTO_MIGRATE = True
    METRICS = False
    LOG_LEVEL = "INFO"
    BCRYPT_LOG_ROUNDS = 12

    JSON_SORT_KEYS = False
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {}

    API_TITLE = "Eventory multisite backend"
    API_VERSION = "1.0.0"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/docs/static/"


def from_environ(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse every set `BACKEND_*` variable into its config key.

    Raises ValueError naming the variable (never its value, which may be a secret).
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, (key, parse) in SETTINGS.items():
        raw = environ.get(f"BACKEND_{name}")
        if raw is None:
            continue
        try:
            values[key] = parse(raw)
        except ValueError:
            raise ValueError(
                f"BACKEND_{name} has a value that cannot be read as {parse.__name__.lstrip('_')}."
            ) from None
    return values
