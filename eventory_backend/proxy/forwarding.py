"""What crosses the relay: the paths a client may ask for below the Eventory base, and the
headers that go on to Eventory and come back from it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import requests
from werkzeug.exceptions import BadRequest

if TYPE_CHECKING:
    from .upstream import Answer, Upstream

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
# Control characters, decoded or as sent: one regular-expression scan instead of a Python loop
# over every character of every relayed path.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DOT_SEGMENTS = frozenset({".", ".."})


def checked_path(path: str, raw_uri: str | None, prefix: str) -> str:
    """The path to request below the Eventory base, or 400 for one that could leave it.

    `path` is the decoded path after `prefix` (the route's, such as /eventory/ or /multisite/,
    behind any mount point); `raw_uri` the request line's target as sent.
    """
    raw_path = (raw_uri or "").split("?", 1)[0]
    problems = (
        _ENCODED_DANGER.search(raw_path)
        or _CONTROL.search(path)
        or _CONTROL.search(raw_path)
        or "\\" in path
        or "@" in path
        or ":" in path
        or path.startswith("/")
        or "//" in path
        or not _DOT_SEGMENTS.isdisjoint(path.split("/"))
    )
    if problems:
        raise BadRequest("This path is not allowed: it could leave the Eventory API.")
    if not raw_path.startswith("/"):
        raw_path = urlsplit(raw_path).path  # an absolute-form target: http://host/eventory/...
    sent = raw_path[len(prefix) :] if raw_path.startswith(prefix) else None
    if sent is not None and unquote(sent) == path:
        return sent  # exactly as the client encoded it
    return requests.utils.requote_uri(path)


def named_by_connection(connection: str | None) -> set[str]:
    """The headers a Connection header names: hop-by-hop too, whatever their names (RFC 9110 7.6.1)."""
    return {token.strip().lower() for token in (connection or "").split(",") if token.strip()}


def request_headers(headers: Iterable[tuple[str, str]], connection: str | None) -> dict[str, str]:
    """The client's headers that may go on to Eventory."""
    named = named_by_connection(connection)
    return {name: value for name, value in headers if name.lower() in REQUEST_HEADERS and name.lower() not in named}


# Every relayed answer: HTML or SVG from Eventory must not run script on this backend's origin
# (where the console and the tokens live). X-Content-Type-Options: nosniff is on every answer.
RELAYED_ANSWER_HEADERS = [("Content-Security-Policy", "sandbox")]


def response_headers(answer: Answer, upstream: Upstream, proxy_prefix: str) -> list[tuple[str, str]]:
    """Eventory's headers that may come back to the client, and the relay's own (a stale
    answer's age among them)."""
    named = named_by_connection(answer.header("Connection"))
    headers = list(RELAYED_ANSWER_HEADERS)
    if answer.age is not None:
        headers += [("Age", str(answer.age)), ("X-Eventory-Stale", "true")]
    for name, value in answer.headers:
        lower = name.lower()
        if lower not in RESPONSE_HEADERS or lower in HOP_BY_HOP or lower in named:
            continue
        if lower == "location":
            value = upstream.rewrite_location(value, proxy_prefix)
        headers.append((name, value))
    return headers
