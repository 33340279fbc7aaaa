"""The one error shape, `{"detail": "..."}`, and every handler that produces it: Werkzeug,
flask-smorest and database errors."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, UnprocessableEntity, default_exceptions

from .extensions import db
from .ratelimit import RateLimited

log = logging.getLogger("eventory_backend.errors")

# Werkzeug's default descriptions are paragraphs; clients show `detail` as it is.
DEFAULT_DETAILS = {
    400: "The request could not be understood.",
    401: "Authentication is required.",
    403: "You are not allowed to do that.",
    404: "Not found.",
    405: "This method is not allowed on this URL.",
    406: "The requested response type cannot be produced.",
    409: "This conflicts with data that already exists.",
    413: "The request body is too large.",
    415: "This content type is not supported.",
    422: "The request has invalid fields.",
    429: "Too many requests; slow down and try again later.",
    500: "Something went wrong on the server.",
    502: "Eventory could not be reached.",
    503: "The service is temporarily unavailable; try again shortly.",
    504: "Eventory did not answer in time.",
}

BEARER = {"WWW-Authenticate": "Bearer"}


class FieldInvalid(UnprocessableEntity):
    """A 422 found by a service rather than a schema, in the same shape: the message, and the field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.data = {"message": message, "errors": {field: [message]}}


def error_response(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any):
    response = jsonify(detail=detail, **extra)
    response.status_code = status
    if status == 401:
        response.headers.update(BEARER)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten(messages: Any) -> dict[str, list[str]]:
    """webargs nests messages by location ({"json": {"field": [...]}}); clients want fields."""
    flat: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, (dict, list, tuple)):
                    walk(prefix, item)
                else:
                    flat.setdefault(prefix or "_schema", []).append(str(item))
        else:
            flat.setdefault(prefix or "_schema", []).append(str(value))

    if isinstance(messages, dict):
        for location in ("json", "form", "json_or_form", "query", "headers", "files", "view_args"):
            if location in messages:
                walk("", messages[location])
                break
        else:
            walk("", messages)
    else:
        walk("", messages)
    return flat


def http_error_response(error: HTTPException):
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    headers = dict(data.get("headers") or {})
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(sorted(valid_methods))
    # Werkzeug's stock descriptions are paragraphs; any other description was written for the client.
    stock = default_exceptions.get(status)
    custom = error.description if stock is None or error.description != stock.description else None
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    detail = data.get("message") or custom or DEFAULT_DETAILS.get(status) or error.name + "."

    messages = data.get("errors") or data.get("messages")
    if status == 422:
        fields = _flatten(messages or {})
        if not data.get("message"):
            names = [name for name in fields if name != "_schema"]
            if names:
                detail = "Invalid value for " + ", ".join(sorted(names)) + "."
            elif fields.get("_schema"):
                detail = fields["_schema"][0]
        return error_response(status, detail, headers, errors=fields)
    if status == 400 and messages and not data.get("message"):
        flat = _flatten(messages)
        if any("Invalid JSON body" in m for ms in flat.values() for m in ms):
            detail = "The request body is not valid JSON."
    return error_response(status, detail, headers)


# "Busy; the same request will work in a moment", by the driver's own code: a lock waited on past
# the server's limit, this transaction chosen as a deadlock's victim (the server rolled it back),
# a write that met a concurrent one, no connection to spare. SQLite says "locked" or "busy".
# MySQL and MariaDB error numbers: lock wait timeout, deadlock, record changed since it was read
# (snapshot isolation), too many connections, too many for this user.
MYSQL_BUSY = frozenset({1205, 1213, 1020, 1040, 1203})
# PostgreSQL SQLSTATEs: deadlock, lock timeout, serialization failure, too many connections.
POSTGRES_BUSY = frozenset({"40P01", "55P03", "40001", "53300"})
# No room to write: MySQL's "disk full" and "the table is full", PostgreSQL's disk_full.
NO_ROOM = frozenset({1021, 1114, "53100"})


def _driver_code(error: SQLAlchemyError) -> int | str | None:
    """The driver's code for a database error: MySQL's error number (PyMySQL's and mysqlclient's
    first argument) or PostgreSQL's SQLSTATE (psycopg); None for SQLite and anything else."""
    original = getattr(error, "orig", None)
    args = getattr(original, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    sqlstate = getattr(original, "sqlstate", None)
    return sqlstate if isinstance(sqlstate, str) else None


def database_error_response(error: SQLAlchemyError):
    """Database trouble the client can act on, never a 500: busy, full, or a conflicting write.
    A server that went away (MySQL's 2006 and 2013, a killed connection) is unavailable: 503."""
    db.session.rollback()
    message = str(getattr(error, "orig", error)).lower()
    if isinstance(error, IntegrityError):
        return error_response(409, "This conflicts with data that already exists.")
    if isinstance(error, DataError):
        return error_response(400, "A value is outside what the database can store.")
    if isinstance(error, StaleDataError):
        return error_response(409, "Someone else changed this at the same moment; load it again and retry.")
    code = _driver_code(error)
    if (
        isinstance(error, PoolTimeout)
        or code in MYSQL_BUSY
        or code in POSTGRES_BUSY
        or "locked" in message
        or "busy" in message
    ):
        return error_response(503, "The database is busy; try again in a moment.", {"Retry-After": "1"})
    if code in NO_ROOM or "disk is full" in message or "no space left" in message or "disk full" in message:
        log.error("database write failed: disk full")
        return error_response(507, "The server has no room left to store this; try again later.")
    if isinstance(error, (OperationalError, DBAPIError)):
        log.error("database unavailable: %s", type(error).__name__)
        return error_response(503, "The database is not reachable right now; try again shortly.", {"Retry-After": "5"})
    raise error


def init_app(app: Flask) -> None:
    """Every error answers in the one shape: Werkzeug's and flask-smorest's HTTP errors (this
    handler replaces the one flask-smorest's Api registered) and database errors. Token errors
    are 401s raised by auth/guard.py."""
    app.register_error_handler(HTTPException, http_error_response)
    app.register_error_handler(SQLAlchemyError, database_error_response)
