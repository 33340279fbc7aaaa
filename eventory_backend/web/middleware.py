"""Middleware: who the client is behind a trusted reverse proxy, the request class, no cookie
sessions, and the security headers every answer carries.

Behind a reverse proxy that BACKEND_TRUSTED_PROXIES names: the socket's address is the client
unless it is a trusted proxy; only then is its X-Forwarded-For (walked from the right, skipping
further trusted proxies) and X-Forwarded-Proto believed. Anyone else's X-Forwarded-* headers are
ignored.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Iterable

from flask import Request as FlaskRequest
from flask import Response, request
from flask.sessions import SessionInterface
from werkzeug.exceptions import BadRequest

PEER = "eventory_backend.peer_addr"
CHAIN = "eventory_backend.forwarded_for"


def _networks(entries: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip()]


class TrustedProxies:
    def __init__(self, wsgi_app, trusted: Iterable[str]):
        self.wsgi_app = wsgi_app
        self.trusted = _networks(trusted)

    def is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def __call__(self, environ, start_response):
        peer = environ.get("REMOTE_ADDR", "")
        environ[PEER] = peer
        forwarded = environ.pop("HTTP_X_FORWARDED_FOR", None)
        proto = environ.pop("HTTP_X_FORWARDED_PROTO", None)
        environ.pop("HTTP_X_FORWARDED_HOST", None)
        if self.trusted and self.is_trusted(peer) and forwarded:
            hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
            client = peer
            while hops:
                client = hops.pop()
                if not self.is_trusted(client):
                    break
            environ["REMOTE_ADDR"] = client
            environ[CHAIN] = forwarded
            if proto and proto.strip().lower() in {"http", "https"}:
                environ["wsgi.url_scheme"] = proto.strip().lower()
        return self.wsgi_app(environ, start_response)


class Request(FlaskRequest):
    """Flask's request, with JSON nested deeper than the decoder's stack a 400 wherever the body
    is read (Werkzeug turns only ValueError into one; RecursionError would be a 500)."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):
        try:
            return super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            if silent:
                return None
            raise BadRequest("The request body is not valid JSON: it is nested too deeply.") from None


class NoCookieSessions(SessionInterface):
    """Bearer tokens only: no cookie session is read or signed on any request."""

    def open_session(self, app, request):
        return self.make_null_session(app)

    def save_session(self, app, session, response) -> None:
        return None


NO_STORE_PREFIXES = ("/auth", "/logins")

# The account console (/account and its files): this server's own scripts, styles and requests
# only, nothing inline, images also from blob: URLs (logos the page fetched with its bearer
# token), no form ever submitted by the browser itself (a form sent before the script ran would
# put a password in a URL), never inside a frame.
CONSOLE_PREFIX = "/account"
CONSOLE_POLICY = (
    "default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


# Swagger UI at /docs (flask-smorest's page; its files come from swagger-ui-bundle under
# /docs/static/): scripts and styles from this server only, plus the page's own inline set-up
# script, allowed by its hash, taken from the page as rendered; data: images (Swagger UI's icons);
# never inside a frame. The page holds nothing from the request (its title, spec URL and Swagger
# UI's settings come from the config), so hashing its inline scripts allows only flask-smorest's
# own; a script that reaches the document later (through the spec's text, a URL) does not run.
DOCS_PAGE = "/docs"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_policy(page: bytes) -> str:
    """The /docs page's Content-Security-Policy, with the hash of each inline script it holds."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    return (
        f"default-src 'self'; script-src 'self'{hashes}; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def security_headers(response: Response) -> Response:
    """Answers about accounts and credentials, and the console page, are never cached (a route
    that says how its own answer may be, a login's logo, is believed); the console and /docs are
    held to their Content-Security-Policy; no response is content-sniffed."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    path = request.path
    if path.startswith(NO_STORE_PREFIXES):
        response.headers.setdefault("Cache-Control", "no-store")
    elif path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/"):
        response.headers["Content-Security-Policy"] = CONSOLE_POLICY
        response.headers["X-Frame-Options"] = "DENY"  # frame-ancestors, for browsers without CSP 2
        response.headers["Referrer-Policy"] = "no-referrer"
        if path == CONSOLE_PREFIX:
            response.headers["Cache-Control"] = "no-store"
    elif path == DOCS_PAGE and response.mimetype == "text/html" and not response.is_streamed:
        response.headers["Content-Security-Policy"] = docs_policy(response.get_data())
        response.headers["X-Frame-Options"] = "DENY"
    return response
