"""Health checks, request ids, one JSON access-log line per request, and Prometheus metrics.

`GET /healthz` (the process answers) and `GET /readyz` (its database answers) are for load
balancers and orchestrators: unauthenticated, cheap, and exempt from rate limits through
`UNLIMITED_ENDPOINTS`.

`GET /metrics` exists only with `BACKEND_METRICS=true`. It needs no token, so it must not be
exposed publicly: let only the Prometheus scraper reach it (a reverse-proxy rule or a private
network). It carries route templates, statuses and counts, never paths, user names or secrets.

Logs are JSON lines on stderr: the access log (`eventory_backend.access`, one line per request,
not propagated, so a root handler such as waitress's does not print it twice) and everything else
the package logs (`eventory_backend`, e.g. the proxy's warnings), unless a deployment configured
handlers of its own for those loggers first.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

import marshmallow as ma
from flask import Flask, Response, current_app, g, has_app_context, has_request_context, request, request_finished
from flask.logging import default_handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .api import Blueprint, ErrorSchema
from .errors import error_response
from .extensions import api, db

log = logging.getLogger("eventory_backend")
access_log = logging.getLogger("eventory_backend.access")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_LOGGED_PATH = 512
READY_RETRY_AFTER = 5

METRICS_KEY = "eventory_metrics"
UPSTREAM_ERROR_KINDS = ("timeout", "unreachable", "broken_body")
SIGN_IN_OUTCOMES = ("ok", "rejected", "failed")
# Method and status label values a client cannot inflate: anything else is "other".
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Relayed calls may wait up to the proxy's read timeout (30 s by default).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

blp = Blueprint("observability", __name__, description="Health checks for load balancers and orchestrators.")
metrics_blp = Blueprint("metrics", __name__, description="Prometheus metrics (only with BACKEND_METRICS=true).")

# The endpoints a rate limiter must leave alone, e.g. with Flask-Limiter:
#     limiter.request_filter(lambda: request.endpoint in UNLIMITED_ENDPOINTS)
UNLIMITED_ENDPOINTS = frozenset({"observability.healthz", "observability.readyz", "metrics.metrics"})


# ---- health ---------------------------------------------------------------------------------


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"description": "Always `ok`.", "example": "ok"})


class ReadinessSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"description": "Always `ready`.", "example": "ready"})


@blp.get("/healthz")
@blp.response(200, HealthSchema, description="The process is alive.")
def healthz():
    """Liveness: the process answers (no database or network call)."""
    return {"status": "ok"}


@blp.get("/readyz")
@blp.response(200, ReadinessSchema, description="The database answers: this instance can serve.")
@blp.alt_response(
    503,
    schema=ErrorSchema,
    description="The database is not reachable.",
    headers={"Retry-After": {"description": "Seconds to wait before asking again.", "schema": {"type": "integer"}}},
)
def readyz():
    """Readiness: the database answers a SELECT 1."""
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        # The driver's message may name hosts and users; the type is enough to act on.
        log.warning("readiness check failed: database error=%s", type(error).__name__)
        return error_response(503, "The database is not reachable.", {"Retry-After": str(READY_RETRY_AFTER)})
    return {"status": "ready"}


# ---- metrics --------------------------------------------------------------------------------


class Metrics:
    """One app's collectors, in a registry of its own (tests build many apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["route", "method", "status"]
        self.requests = Counter(
            "eventory_backend_requests",
            "Requests answered, by route template, method and status.",
            labels,
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "eventory_backend_request_duration_seconds",
            "Time to answer a request (until a streamed body starts), by route template, method and status.",
            labels,
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "eventory_backend_upstream_duration_seconds",
            "Time Eventory took to answer a request's headers, failed attempts included.",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "eventory_backend_upstream_errors",
            "Requests to Eventory that failed, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.sign_ins = Counter(
            "eventory_backend_sign_ins",
            "Server-side sign-ins to Eventory with a stored login, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.token_cache_hits = Counter(
            "eventory_backend_token_cache_hits",
            "Brokered calls served with a cached Eventory token.",
            registry=self.registry,
        )
        self.token_cache_misses = Counter(
            "eventory_backend_token_cache_misses",
            "Brokered calls that had to sign in to Eventory first.",
            registry=self.registry,
        )
        # Zeros from the start, so rates and alerts work before the first failure.
        for kind in UPSTREAM_ERROR_KINDS:
            self.upstream_errors.labels(kind)
        for outcome in SIGN_IN_OUTCOMES:
            self.sign_ins.labels(outcome)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method if method in _METHODS else "other", str(status) if 100 <= status <= 599 else "other")
        self.requests.labels(*labels).inc()
        self.request_seconds.labels(*labels).observe(seconds)


def current_metrics() -> Metrics | None:
    """The current app's metrics; None when they are off or outside an app context."""
    if has_app_context():
        return current_app.extensions.get(METRICS_KEY)
    return None


# The proxy and broker call these. Fan-out workers run without an app context, so the objects
# they use (Upstream, TokenCache) pass the app's Metrics they were given by init_app.


def observe_upstream(seconds: float, metrics: Metrics | None = None) -> None:
    metrics = metrics or current_metrics()
    if metrics is not None:
        metrics.upstream_seconds.observe(seconds)


def count_upstream_error(kind: str, metrics: Metrics | None = None) -> None:
    metrics = metrics or current_metrics()
    if metrics is not None and kind in UPSTREAM_ERROR_KINDS:
        metrics.upstream_errors.labels(kind).inc()


def count_sign_in(outcome: str, metrics: Metrics | None = None) -> None:
    metrics = metrics or current_metrics()
    if metrics is not None and outcome in SIGN_IN_OUTCOMES:
        metrics.sign_ins.labels(outcome).inc()


def count_token_cache(hit: bool, metrics: Metrics | None = None) -> None:
    metrics = metrics or current_metrics()
    if metrics is not None:
        (metrics.token_cache_hits if hit else metrics.token_cache_misses).inc()


def counts_sign_ins(rejected: type[BaseException]) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Count each call of a sign-in function `(upstream, ...)`: ok, rejected (it raised `rejected`) or failed.

    The metrics come from `upstream.metrics`, so a fan-out worker's sign-ins count too.
    """

    def decorate(sign_in: Callable[..., str]) -> Callable[..., str]:
        @wraps(sign_in)
        def counted(upstream: Any, *args: Any, **kwargs: Any) -> str:
            metrics = getattr(upstream, "metrics", None)
            try:
                token = sign_in(upstream, *args, **kwargs)
            except rejected:
                count_sign_in("rejected", metrics)
                raise
            except Exception:
                count_sign_in("failed", metrics)
                raise
            count_sign_in("ok", metrics)
            return token

        return counted

    return decorate


@metrics_blp.get("/metrics", endpoint="metrics")
@metrics_blp.response(
    200, {"type": "string"}, content_type="text/plain", description="Prometheus text exposition format."
)
def export_metrics():
    """Request, relay and broker metrics for Prometheus (keep this route private)."""
    registry = current_app.extensions[METRICS_KEY].registry
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


# ---- request ids and the access log ---------------------------------------------------------


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
        return json.dumps(line, default=str)


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


def request_id() -> str:
    """This request's id: the client's X-Request-ID when it is a plain token, else a new one."""
    if "request_id" not in g:
        sent = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = sent if _REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
    return g.request_id


def _printable(value: str, limit: int) -> str:
    value = value[:limit]
    if value.isprintable():
        return value
    escaped = "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in value)
    return escaped[:limit]


def _user_id() -> int | None:
    """The subject of a token verified during this request (never verifies one itself)."""
    claims = g.get("_jwt_extended_jwt")
    subject = claims.get("sub") if isinstance(claims, dict) else None
    if isinstance(subject, str) and subject.isascii() and subject.isdigit():
        return int(subject)
    return None


def _begin_request() -> None:
    g.request_started = time.perf_counter()
    request_id()


def _tag_response(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id()
    return response


def _record(app: Flask, status: int) -> None:
    """Log and count the request once, when its response (or its crash) is known."""
    if g.get("request_recorded"):
        return
    g.request_recorded = True
    seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    metrics = app.extensions.get(METRICS_KEY)
    if metrics is not None:
        metrics.observe_request(route, request.method, status, seconds)
    if access_log.isEnabledFor(logging.INFO):
        fields = {
            "request_id": request_id(),
            "method": _printable(request.method, 16),
            "path": _printable(request.path, MAX_LOGGED_PATH),
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "user_id": _user_id(),
            "client": request.remote_addr,
        }
        access_log.info("request", extra={"fields": fields})


def _finished(sender: Flask, response: Response, **_extra: Any) -> None:
    _record(sender, response.status_code)


def _teardown(_error: BaseException | None) -> None:
    # Only reached unrecorded when the response was never finalised (an exception propagated).
    _record(current_app, 500)


def init_app(app: Flask) -> None:
    configure_logging(app.config.get("LOG_LEVEL", "INFO"))
    # First, so a hook that fails after it still leaves a request id and a start time.
    app.before_request_funcs.setdefault(None, []).insert(0, _begin_request)
    app.after_request(_tag_response)
    app.teardown_request(_teardown)
    request_finished.connect(_finished, app)
    api.register_blueprint(blp)

    metrics = Metrics() if app.config.get("METRICS") else None
    app.extensions[METRICS_KEY] = metrics
    if metrics is not None:
        api.register_blueprint(metrics_blp)
        for name in ("eventory_upstream", "eventory_tokens"):
            service = app.extensions.get(name)
            if service is not None:
                service.metrics = metrics
