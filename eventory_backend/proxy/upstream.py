"""Talking to Eventory: the one pooled HTTP session per app, and streaming both ways."""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from flask import Flask, current_app
from werkzeug.exceptions import GatewayTimeout

from ..observability.logging import loggable
from ..observability.metrics import Metrics, count_upstream_error, current_metrics, metrics_of, observe_upstream
from .errors import EventoryBrokenBody, EventoryUnavailable
from .unmerged_request import new_session, prepare, send_prepared

log = logging.getLogger("eventory_backend.proxy")

CHUNK = 64 * 1024
# Bodies up to this size are read into memory, so a brokered call can be replayed once after a 401.
REPLAYABLE_BODY = 1024 * 1024
# A URL that can go on the request line as it is: printable ASCII, no space, no fragment.
_SENDABLE_AS_IS = re.compile(r"[!\"$-~]+")


@dataclass
class Body:
    """A request body to send: bytes (replayable) or a stream of known or unknown length."""

    data: bytes | IO[bytes] | Iterator[bytes] | None
    length: int | None = None

    @property
    def replayable(self) -> bool:
        return self.data is None or isinstance(self.data, bytes)


@dataclass(frozen=True, slots=True)
class EventoryRequest:
    """One request to Eventory, as the relay, the broker and the fan-out pass it on: `path` below
    the Eventory base and `query` as the client encoded them, the `headers` to send, a `body` or
    a sign-in's `form`, and `timeout` (connect, read), the Upstream's own when None. Who signs it
    travels beside it (the broker's `Credentials`, `Upstream.send`'s `authorization`): the broker
    sends the same request again with a new token after a 401, a fan-out once per login."""

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: Body | None = None
    form: dict[str, str] | None = field(default=None, repr=False)
    timeout: tuple[float, float] | None = None


class _SizedStream:
    """A stream requests sends with the client's Content-Length, read in chunks."""

    def __init__(self, stream: IO[bytes], length: int):
        self._stream, self._length = stream, length

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)


class Upstream:
    """One pooled session per app, shared by waitress's threads. It reports to the app's
    `metrics` it was built with (fan-out threads have no app context to find them in)."""

    def __init__(
        self,
        base_url: str,
        connect_timeout: float,
        read_timeout: float,
        pool_size: int,
        metrics: Metrics | None = None,
    ):
        self.metrics = metrics
        self.base_url = base_url.rstrip("/")
        base = urlsplit(self.base_url)
        self.base_path = base.path.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.session = new_session(pool_size)

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def send(
        self, request: EventoryRequest, *, authorization: str | None = None, stream: bool = True
    ) -> requests.Response:
        """Send `request` to Eventory, with `authorization` as its Authorization header if given;
        502 when it cannot be reached, 504 when it is too slow."""
        method, path, query = request.method, request.path, request.query
        url = self.url(path) + (f"?{query}" if query else "")
        headers = request.headers
        if authorization is not None:
            headers = {**headers, "Authorization": authorization}
        data: Any = request.form
        body = request.body
        if body is not None and body.data is not None:
            data = body.data
            if not isinstance(data, bytes) and body.length is not None:
                data = _SizedStream(data, body.length)
        started = time.perf_counter()
        try:
            prepared = prepare(method, url, headers, data)  # see unmerged_request.py
            if _SENDABLE_AS_IS.fullmatch(url):
                # Keep the client's percent-encodings: requests would decode the unreserved ones
                # (%7e becomes ~, %41 becomes A). urllib3 still writes their hex digits in upper
                # case and escapes characters a URL may not hold.
                prepared.url = url
            # Sent by the session's adapter, without Session.send's own work: see unmerged_request.py.
            return send_prepared(self.session, prepared, timeout=request.timeout or self.timeout, stream=stream)
        except requests.Timeout:
            count_upstream_error("timeout", self.metrics)
            log.warning("eventory timeout method=%s path=/%s", method, _loggable_path(path))
            raise GatewayTimeout("Eventory did not answer in time; try again shortly.") from None
        except (requests.ConnectionError, requests.RequestException) as error:
            count_upstream_error("unreachable", self.metrics)
            log.warning(
                "eventory unreachable method=%s path=/%s error=%s",
                method,
                _loggable_path(path),
                type(error).__name__,
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


def _loggable_path(path: str) -> str:
    return loggable(unquote(path), 200)


def read_chunk(response: requests.Response, metrics: Metrics | None) -> bytes:
    """The next bytes of Eventory's answer as sent (gzip stays gzip), as soon as any arrive; b""
    at its end. A body that breaks off raises EventoryBrokenBody, so the server closes the
    client's connection instead of ending a truncated body as if it were complete."""
    try:
        return response.raw.read1(CHUNK, decode_content=False)
    except (urllib3.exceptions.HTTPError, OSError) as error:
        count_upstream_error("broken_body", metrics)
        log.warning("eventory body broke off url_path=%s error=%s", urlsplit(response.url).path, type(error).__name__)
        raise EventoryBrokenBody("Eventory's answer broke off.") from None


def body_ended(response: requests.Response) -> bool:
    """Whether Eventory's answer has been read to its end (all of its Content-Length, or the last
    chunk of a chunked one), so asking for more would only return b"". Its connection is back in
    the pool by then."""
    return response.raw.closed


def stream_body(response: requests.Response) -> Iterator[bytes]:
    """Eventory's bytes as sent, each chunk as soon as it arrives (see read_chunk)."""
    metrics = current_metrics()  # runs at the first chunk, still inside the request (see started_body)
    try:
        while chunk := read_chunk(response, metrics):
            yield chunk
            if body_ended(response):
                break
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
        raise broke_before_it_began() from None
    return itertools.chain([first], chunks)


def broke_before_it_began() -> EventoryUnavailable:
    return EventoryUnavailable("Eventory's answer broke off before it began.")


@dataclass
class Answer:
    """Eventory's answer as the relay passes it on: its status, its headers as sent, and its body
    as sent, its first chunk already read (see started_body). `age` is set on a stale answer:
    the seconds since Eventory gave it (BACKEND_STALE_IF_ERROR)."""

    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes]
    age: int | None = None

    @classmethod
    def streamed(cls, response: requests.Response) -> Answer:
        return cls(response.status_code, list(response.raw.headers.items()), started_body(response))

    def header(self, name: str) -> str | None:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()


def init_app(app: Flask) -> None:
    app.extensions["eventory_upstream"] = Upstream(
        app.config["EVENTORY_URL"],
        app.config["PROXY_CONNECT_TIMEOUT"],
        app.config["PROXY_READ_TIMEOUT"],
        pool_size=max(10, app.config["THREADS"]),
        metrics=metrics_of(app),
    )


def upstream() -> Upstream:
    return current_app.extensions["eventory_upstream"]
