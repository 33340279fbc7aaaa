"""Talking to Eventory: the pooled session, path and header rules, and streaming both ways."""

from __future__ import annotations

import http.cookiejar
import itertools
import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from flask import Flask, current_app
from requests.adapters import HTTPAdapter
from werkzeug.exceptions import BadRequest, GatewayTimeout, HTTPException

from ..observability import Metrics, count_upstream_error, current_metrics, observe_upstream

log = logging.getLogger("eventory_backend.proxy")

CHUNK = 64 * 1024
# Bodies up to this size are read into memory, so a brokered call can be replayed once after a 401.
REPLAYABLE_BODY = 1024 * 1024

# Request headers a client may send on to Eventory; everything else (Cookie, the backend's own
# Authorization, hop-by-hop headers, Host) stays here.
REQUEST_HEADERS = {
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "content-type",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "range",
    "user-agent",
    "x-requested-with",
}
# Response headers passed back; Set-Cookie and hop-by-hop headers never cross.
RESPONSE_HEADERS = {
    "accept-ranges",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-length",
    "content-range",
    "content-type",
    "etag",
    "expires",
    "last-modified",
    "location",
    "retry-after",
    "vary",
    "www-authenticate",
}
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}

# Percent-encodings that could change what the path means once decoded: dot, slash, backslash,
# at, colon, percent itself (double encoding), and control characters.
_ENCODED_DANGER = re.compile(r"%(2e|2f|5c|40|3a|25|[01][0-9a-f]|7f)", re.IGNORECASE)
# A URL that can go on the request line as it is: printable ASCII, no space, no fragment.
_SENDABLE_AS_IS = re.compile(r"[!\"$-~]+")


class EventoryUnavailable(HTTPException):
    code = 502
    description = "Eventory could not be reached; try again shortly."


class EventoryBrokenBody(Exception):
    """Eventory's answer broke off mid-body; the client's connection must close, not end cleanly."""


@dataclass
class Body:
    """A request body to send: bytes (replayable) or a stream of known or unknown length."""

    data: bytes | IO[bytes] | Iterator[bytes] | None
    length: int | None = None

    @property
    def replayable(self) -> bool:
        return self.data is None or isinstance(self.data, bytes)


class _SizedStream:
    """A stream requests sends with the client's Content-Length, read in chunks."""

    def __init__(self, stream: IO[bytes], length: int):
        self._stream, self._length = stream, length

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)


def checked_path(path: str, raw_uri: str | None, prefix: str) -> str:
    """The path to request below the Eventory base, or 400 for one that could leave it.

    `path` is the decoded path after `prefix` (the route's, such as /eventory/ or /multisite/,
    behind any mount point); `raw_uri` the request line's target as sent.
    """
    raw_path = (raw_uri or "").split("?", 1)[0]
    problems = (
        _ENCODED_DANGER.search(raw_path)
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in path + raw_path)
        or "\\" in path
        or "@" in path
        or ":" in path
        or path.startswith("/")
        or "//" in path
        or any(segment in {".", ".."} for segment in path.split("/"))
    )
    if problems:
        raise BadRequest("This path is not allowed: it could leave the Eventory API.")
    if not raw_path.startswith("/"):
        raw_path = urlsplit(raw_path).path  # an absolute-form target: http://host/eventory/...
    sent = raw_path[len(prefix) :] if raw_path.startswith(prefix) else None
    if sent is not None and unquote(sent) == path:
        return sent  # exactly as the client encoded it
    return requests.utils.requote_uri(path)


class Upstream:
    """One pooled session per app, shared by waitress's threads."""

    metrics: Metrics | None = None  # the app's, set by observability.init_app (fan-out threads have no app context)

    def __init__(self, base_url: str, connect_timeout: float, read_timeout: float, pool_size: int):
        self.base_url = base_url.rstrip("/")
        base = urlsplit(self.base_url)
        self.base_path = base.path.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        session = requests.Session()
        session.trust_env = False  # no proxy or .netrc credentials from the environment
        session.headers.clear()  # no default Accept-Encoding: the client's choice decides
        # Cookies set by Eventory for one caller must never reach it on another's behalf.
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.session = session

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def send(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        headers: dict[str, str] | None = None,
        body: Body | None = None,
        form: dict[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
        stream: bool = True,
    ) -> requests.Response:
        """One request to Eventory; 502 when it cannot be reached, 504 when it is too slow."""
        url = self.url(path) + (f"?{query}" if query else "")
        data: Any = form
        if body is not None and body.data is not None:
            data = body.data
            if not isinstance(data, bytes) and body.length is not None:
                data = _SizedStream(data, body.length)
        started = time.perf_counter()
        try:
            # Prepared here rather than by session.request(): the session adds no headers, cookies,
            # auth or hooks to merge (see __init__), and skipping the merge saves a tenth of a
            # millisecond per relayed request.
            prepared = requests.PreparedRequest()
            prepared.prepare(method=method, url=url, headers=headers, data=data)
            if _SENDABLE_AS_IS.fullmatch(url):
                # Keep the client's percent-encodings: requests would decode the unreserved ones
                # (%7e becomes ~, %41 becomes A). urllib3 still writes their hex digits in upper
                # case and escapes characters a URL may not hold.
                prepared.url = url
            return self.session.send(prepared, timeout=timeout or self.timeout, allow_redirects=False, stream=stream)
        except requests.Timeout:
            count_upstream_error("timeout", self.metrics)
            log.warning("eventory timeout method=%s path=/%s", method, _loggable(path))
            raise GatewayTimeout("Eventory did not answer in time; try again shortly.") from None
        except (requests.ConnectionError, requests.RequestException) as error:
            count_upstream_error("unreachable", self.metrics)
            log.warning(
                "eventory unreachable method=%s path=/%s error=%s", method, _loggable(path), type(error).__name__
            )
            raise EventoryUnavailable() from None
        finally:
            observe_upstream(time.perf_counter() - started, self.metrics)

    def rewrite_location(self, location: str, proxy_prefix: str) -> str:
        """A Location inside the Eventory base becomes the matching /eventory/... path."""
        parts = urlsplit(location)
        base = urlsplit(self.base_url)
        if parts.scheme and (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            return location
        if not parts.scheme and parts.netloc:
            return location
        if not parts.scheme and not location.startswith("/"):
            return location  # relative to the current path: already right behind the proxy
        path = parts.path
        if self.base_path and not (path == self.base_path or path.startswith(self.base_path + "/")):
            return location
        rest = path[len(self.base_path) :].lstrip("/")
        rewritten = f"{proxy_prefix}/{rest}"
        if parts.query:
            rewritten += f"?{parts.query}"
        if parts.fragment:
            rewritten += f"#{parts.fragment}"
        return rewritten


def _loggable(path: str) -> str:
    return "".join(char if char.isprintable() else "?" for char in unquote(path))[:200]


def stream_body(response: requests.Response) -> Iterator[bytes]:
    """Eventory's bytes as sent (gzip stays gzip), each chunk as soon as it arrives.

    A body that breaks off raises EventoryBrokenBody, so the server closes the client's
    connection instead of ending a truncated body as if it were complete.
    """
    metrics = current_metrics()  # runs at the first chunk, still inside the request (see started_body)
    raw = response.raw
    try:
        while True:
            chunk = raw.read1(CHUNK, decode_content=False)
            if not chunk:
                break
            yield chunk
    except (urllib3.exceptions.HTTPError, OSError) as error:
        count_upstream_error("broken_body", metrics)
        log.warning("eventory body broke off url_path=%s error=%s", urlsplit(response.url).path, type(error).__name__)
        raise EventoryBrokenBody("Eventory's answer broke off.") from None
    finally:
        response.close()


def started_body(response: requests.Response) -> Iterator[bytes]:
    """stream_body, with its first chunk read now: a body that breaks before its first byte
    can still be answered 502 rather than a status already sent."""
    chunks = stream_body(response)
    try:
        first = next(chunks)
    except StopIteration:
        return iter(())
    except EventoryBrokenBody:
        raise EventoryUnavailable("Eventory's answer broke off before it began.") from None
    return itertools.chain([first], chunks)


def named_by_connection(connection: str | None) -> set[str]:
    """The headers a Connection header names: hop-by-hop too, whatever their names (RFC 9110 7.6.1)."""
    return {token.strip().lower() for token in (connection or "").split(",") if token.strip()}


def request_headers(headers: Iterable[tuple[str, str]], connection: str | None) -> dict[str, str]:
    """The client's headers that may go on to Eventory."""
    named = named_by_connection(connection)
    return {name: value for name, value in headers if name.lower() in REQUEST_HEADERS and name.lower() not in named}


def response_headers(response: requests.Response, upstream: Upstream, proxy_prefix: str) -> list[tuple[str, str]]:
    named = named_by_connection(response.headers.get("Connection"))
    headers = []
    for name, value in response.raw.headers.items():
        lower = name.lower()
        if lower not in RESPONSE_HEADERS or lower in HOP_BY_HOP or lower in named:
            continue
        if lower == "location":
            value = upstream.rewrite_location(value, proxy_prefix)
        headers.append((name, value))
    return headers


def init_app(app: Flask) -> None:
    app.extensions["eventory_upstream"] = Upstream(
        app.config["EVENTORY_URL"],
        app.config["PROXY_CONNECT_TIMEOUT"],
        app.config["PROXY_READ_TIMEOUT"],
        pool_size=max(10, app.config["THREADS"]),
    )


def upstream() -> Upstream:
    return current_app.extensions["eventory_upstream"]
