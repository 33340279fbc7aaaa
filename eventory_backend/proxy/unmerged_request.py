"""A workaround: each request to Eventory is prepared on its own (`requests.PreparedRequest`)
instead of by `Session.prepare_request`, which merges the session's headers, cookies, auth,
params and hooks into every request, and sent through the session's transport adapter
(`HTTPAdapter.send`, requests' public lower-level API) instead of `Session.send`, which around
that call runs the response hooks, stores the answer's cookies, looks up where a redirect would
lead and merges the session's proxy and certificate settings.

Why: the merge is a large share of a relayed request's CPU, and `Session.send`'s own work about
3% of a relayed request's instructions (bench/README.md has the figures).
Why it is safe: `new_session` builds the one session with nothing to merge or run: no default
headers (the client's own Accept-Encoding decides), a cookie jar that accepts no cookie
(Eventory's cookies for one caller must never reach it on another's behalf), no auth, params or
hooks, and nothing read from the environment (proxies, .netrc); redirects are never followed (the
relay hands them to the client).

Checked against requests 2.34: tests/test_library_workarounds.py holds what `prepare` builds
equal to what `Session.prepare_request` builds with this session, and what `send_prepared` answers equal
to what `Session.send` answers (a redirect and an answer that sets a cookie among them), so a
requests release whose merge or send adds something fails there.
"""

from __future__ import annotations

import http.cookiejar
from typing import Any

import requests
from requests.adapters import HTTPAdapter


def new_session(pool_size: int) -> requests.Session:
    """The pooled session, with nothing for a request to inherit from it."""
    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc credentials from the environment
    session.headers.clear()  # no default Accept-Encoding: the client's choice decides
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def send_prepared(
    session: requests.Session,
    prepared: requests.PreparedRequest,
    *,
    timeout: tuple[float, float],
    stream: bool,
) -> requests.Response:
    """What `session.send(prepared, allow_redirects=False, ...)` answers with `new_session`'s
    session: sent by its adapter; unless `stream`, the body is read and the connection given back."""
    response = session.get_adapter(prepared.url or "").send(prepared, stream=stream, timeout=timeout)
    if not stream:
        response.content  # noqa: B018 - read now, as Session.send does
    return response


def prepare(method: str, url: str, headers: dict[str, str] | None, data: Any) -> requests.PreparedRequest:
    """The request as `Session.prepare_request` would build it with `new_session`'s session."""
    prepared = requests.PreparedRequest()
    prepared.prepare(method=method, url=url, headers=headers, data=data)
    return prepared
