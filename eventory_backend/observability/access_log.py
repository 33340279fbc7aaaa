"""Request ids (`X-Request-ID`), and one access-log line and one metrics observation per request."""

from __future__ import annotations

import functools
import logging
import random
import re
import time
from collections.abc import Iterable
from typing import Any, cast

from flask import Flask, Response, current_app, g, request, request_finished
from werkzeug.wsgi import ClosingIterator

from .logging import access_log, loggable
from .metrics import Metrics, metrics_of

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_LOGGED_PATH = 512


def request_id() -> str:
    """This request's id: the client's X-Request-ID when it is a plain token, else a new one."""
    chosen = g.get("request_id")
    if chosen is None:
        sent = request.headers.get(REQUEST_ID_HEADER, "")
        # An id needs to be unique, not secret: 128 bits from `random` (which a forked child
        # reseeds) need no system call, so the request keeps the GIL.
        chosen = g.request_id = sent if _REQUEST_ID.fullmatch(sent) else f"{random.getrandbits(128):032x}"
    return chosen


def _user_id() -> int | None:
    """The account of a token verified during this request (never verifies one itself)."""
    return g.get("account_id")  # set by auth/guard.py


def _begin_request() -> None:
    g.request_started = time.perf_counter()
    request_id()


def _tag_response(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id()
    return response


def _record(app: Flask, status: int, response: Response | None = None) -> None:
    """Log and count the request once: a streamed answer (the relay's) when its body has gone out
    (or the client hung up, or Eventory's body broke off), so the line comes after the client has
    its answer and its duration covers the body; any other answer, or a crash, now."""
    if g.get("request_recorded"):
        return
    g.request_recorded = True
    started = g.get("request_started") or time.perf_counter()
    current = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, not one per field
    rule = current.url_rule
    fields = None
    if access_log.isEnabledFor(logging.INFO):
        fields = {
            "request_id": request_id(),
            "method": loggable(current.method, 16),
            "path": loggable(current.path, MAX_LOGGED_PATH),
            "status": status,
            "duration_ms": 0.0,  # set when the line is written
            "user_id": _user_id(),
            "client": current.remote_addr,
        }
    done = functools.partial(
        _write, metrics_of(app), rule.rule if rule is not None else "unmatched", current.method, status, started, fields
    )
    if response is not None and response.is_streamed:
        # The server closes the body once it has sent it. Not `call_on_close`: Werkzeug skips
        # those callbacks for a direct_passthrough body, which the relay's is.
        response.response = ClosingIterator(cast(Iterable[bytes], response.response), done)
    else:
        done()


def _write(metrics: Metrics | None, route: str, method: str, status: int, started: float, fields: dict | None) -> None:
    """The request's metrics observation and access-log line (None when the log is off), timed now."""
    seconds = time.perf_counter() - started
    if metrics is not None:
        metrics.observe_request(route, method, status, seconds)
    if fields is not None:
        fields["duration_ms"] = round(seconds * 1000, 1)
        access_log.info("request", extra={"fields": fields})


def _finished(sender: Flask, response: Response, **_extra: Any) -> None:
    _record(sender, response.status_code, response)


def _teardown(_error: BaseException | None) -> None:
    # Only reached unrecorded when the response was never finalised (an exception propagated).
    _record(current_app, 500)


def init_app(app: Flask) -> None:
    # First, so a hook that fails after it still leaves a request id and a start time.
    app.before_request_funcs.setdefault(None, []).insert(0, _begin_request)
    app.after_request(_tag_response)
    app.teardown_request(_teardown)
    request_finished.connect(_finished, app)
