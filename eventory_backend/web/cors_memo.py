"""A workaround: the CORS headers flask-cors adds to an answer are worked out once for each kind
of request (the same Origin, method and preflight headers) and then copied, instead of anew on
every answer.

Why: flask-cors's `after_request` matches the path against its resources, works the headers out
from its options and the request (building two `MultiDict`s), and formats a debug line whether
or not it is written: 5.3% of a relayed request's instructions with the `Origin` header the
browser sends (bench/README.md has the figures).

Why it is safe: the backend configures flask-cors with one resource for every path (`/*`) and
fixed options (`_init_cors` in `__init__.py`), so what it adds to an answer that has no CORS
headers yet depends only on the request's `Origin`, method, `Access-Control-Request-Method`,
`Access-Control-Request-Headers` and `Access-Control-Request-Private-Network`. The first
request of each kind is answered by flask-cors's own function (run on an empty answer: the
headers it adds to it); the copies come from that. An answer that already has CORS headers goes to
flask-cors's function as before. The memo holds at most `MAX_KINDS` kinds (the headers come from
the client) and starts over when full.

Under the public API: it finds the function `CORS.init_app` registers by its name and puts the
memo in its place. Checked against flask-cors 6.0: tests/test_library_workarounds.py fails if
the function is not found, or if any answer (paths, statuses, allowed and refused origins,
preflights) differs from flask-cors's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import cast

from flask import Flask, Response, request

AfterRequest = Callable[[Response], Response]

FLASK_CORS_HOOK = "make_after_request_function.<locals>.cors_after_request"
MAX_KINDS = 1024
_ALLOW_ORIGIN = "Access-Control-Allow-Origin"
_KIND_HEADERS = (
    "Origin",
    "Access-Control-Request-Method",
    "Access-Control-Request-Headers",
    "Access-Control-Request-Private-Network",
)


class CorsMemo:
    """flask-cors's `after_request`, its headers remembered per kind of request."""

    def __init__(self, flask_cors_hook: AfterRequest):
        self.flask_cors_hook = flask_cors_hook
        self._kinds: dict[tuple[str | None, ...], list[tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def __call__(self, response: Response) -> Response:
        if response.headers.get(_ALLOW_ORIGIN):
            return self.flask_cors_hook(response)  # set by a view: flask-cors leaves it alone
        current = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
        sent = current.headers
        kind = (current.method, *(sent.get(name) for name in _KIND_HEADERS))
        headers = self._kinds.get(kind)
        if headers is None:
            empty = Response()
            before = len(list(empty.headers.items()))
            headers = list(self.flask_cors_hook(empty).headers.items())[before:]  # what it added
            with self._lock:
                if len(self._kinds) >= MAX_KINDS:
                    self._kinds.clear()
                self._kinds[kind] = headers
        for name, value in headers:
            response.headers.add(name, value)
        return response


def remember_cors_headers(app: Flask) -> bool:
    """Put the memo in place of flask-cors's `after_request` on `app`; whether it was found."""
    hooks = app.after_request_funcs.get(None, [])
    for index, hook in enumerate(hooks):
        if getattr(hook, "__qualname__", "") == FLASK_CORS_HOOK:
            hooks[index] = CorsMemo(cast(AfterRequest, hook))
            return True
    return False
