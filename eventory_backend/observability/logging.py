"""Logs as JSON lines on stderr: the access log (`eventory_backend.access`, one line per request,
not propagated, so a root handler such as waitress's does not print it twice) and everything else
the package logs (`eventory_backend`, e.g. the proxy's warnings), unless a deployment configured
handlers of its own for those loggers first. `loggable` is the one cleaner for text a client
chose (paths, usernames) before it goes into a log line."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from flask import g, has_request_context
from flask.logging import default_handler

access_log = logging.getLogger("eventory_backend.access")
# json.dumps(line, default=str) would build a new encoder for every line.
_as_json = json.JSONEncoder(default=str).encode


def loggable(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with anything unprintable escaped (\\n, \\x1b...): a
    client's text cannot forge a log line or move a terminal's cursor, in any log format."""
    text = text[:limit]
    if text.isprintable():
        return text
    escaped = "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)
    return escaped[:limit]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, then the record's
    `fields` (the access log's) or, inside a request, its request id."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        elif has_request_context() and "request_id" in g:
            line["request_id"] = g.request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # ASCII only: nothing in a line can move a terminal's cursor or forge another line.
        return _as_json(line)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted (as logging.lastResort does)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


_logging_lock = threading.Lock()
_logging_configured = False


def _level(name: object) -> int:
    value = str(name).strip().upper()
    levels = logging.getLevelNamesMapping()
    if value not in levels:
        raise ValueError("BACKEND_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL.")
    return levels[value]


def configure_logging(level_name: object = "INFO") -> None:
    """JSON lines on stderr for the package and the access log, once per process; the level each time.

    Loggers a deployment gave handlers of its own before the first app was built are left as they are.
    """
    global _logging_configured
    level = _level(level_name)
    package = logging.getLogger("eventory_backend")  # also Flask's app.logger
    with _logging_lock:
        if not _logging_configured:
            _logging_configured = True
            _add_json_handlers(package)
        package.setLevel(level)
        access_log.setLevel(level)


def _add_json_handlers(package: logging.Logger) -> None:
    if default_handler in package.handlers:
        package.removeHandler(default_handler)  # Flask's plain-text fallback
    if not package.handlers:
        package.addHandler(_StderrHandler())
    if not access_log.handlers:
        access_log.addHandler(_StderrHandler())
        access_log.propagate = False


def log_everything_as_json() -> None:
    """For `python wsgi.py`: waitress's and other libraries' warnings become JSON lines too, and
    the package's lines are written once. Without it waitress adds a plain-text root handler
    that repeats each of the package's warnings (`configure_logging` keeps the package
    propagating, so pytest's caplog and embedding applications still see its records)."""
    root = logging.getLogger()
    with _logging_lock:
        if not root.handlers:
            root.addHandler(_StderrHandler())
        package = logging.getLogger("eventory_backend")
        if any(isinstance(handler, _StderrHandler) for handler in package.handlers):
            package.propagate = False
        # No JSON line shows the thread, process or multiprocessing name a record would otherwise
        # look up when it is made (a getpid system call among them, on every access-log line).
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
