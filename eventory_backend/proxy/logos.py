"""GET /logins/<id>/logo: the organisation's logo from Eventory's `logo`, brokered with the login
and kept in memory per login (lru.py) for a day, so a frontend shows every logo with one
If-None-Match each and no Eventory token."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import requests
from flask import Flask, current_app
from werkzeug.exceptions import GatewayTimeout, NotFound

from ..logins.services import login_changed
from .broker import token_cache
from .errors import EventoryBrokenBody, EventoryUnavailable, EventoryUnavailableForSignIn
from .lru import BytesBoundLRU
from .services import brokered_send, credentials_for, release_database
from .upstream import read_chunk, upstream

MAX_AGE = 24 * 60 * 60  # seconds a logo is served before Eventory is asked again
LARGEST = 1024 * 1024  # a larger "logo" is not an organisation's logo
KEPT_BYTES = 16 * 1024 * 1024  # every login's logo together, in this process


class NoLogo(NotFound):
    description = "Eventory has no logo for this login's organisation."


class LogoTooLarge(EventoryUnavailable):
    description = "Eventory's logo for this organisation is larger than 1 MiB; it is not served."


@dataclass(frozen=True)
class Logo:
    data: bytes
    content_type: str
    etag: str  # unquoted
    credentials: bytes  # TokenCache.key of the credentials it was read with


def logo_of(user_id: int, login_id: int) -> Logo:
    """The logo of a login the user may use (their own or shared with them): kept, or read from
    Eventory once a day (or after a change of credentials); the kept one, however old, while
    Eventory is down. 404 for a login they cannot see."""
    credentials = credentials_for(user_id, login_id)
    release_database()
    logos: BytesBoundLRU[Logo] = current_app.extensions["eventory_logos"]
    cache, up = token_cache(), upstream()
    key = credentials.key
    kept = logos.get(login_id)
    if kept is not None and kept.value.credentials != key:
        kept = None
    if kept is not None and kept.age() < MAX_AGE:
        return kept.value
    try:
        logo = _read(brokered_send(up, cache, credentials, "GET", "logo", query="", headers={"Accept": "image/*"}), key)
    except (EventoryUnavailable, EventoryUnavailableForSignIn, GatewayTimeout):
        if kept is None:
            raise
        return kept.value
    logos.keep(login_id, login_id, logo, len(logo.data))
    return logo


def _read(response: requests.Response, credentials: bytes) -> Logo:
    try:
        if response.status_code == 404:
            raise NoLogo()
        if response.status_code != 200:
            raise EventoryUnavailable(f"Eventory answered {response.status_code} to logo.")
        chunks, size = [], 0
        while chunk := read_chunk(response, None):
            size += len(chunk)
            if size > LARGEST:
                raise LogoTooLarge()
            chunks.append(chunk)
    except EventoryBrokenBody:
        raise EventoryUnavailable("Eventory's logo broke off.") from None
    finally:
        response.close()
    data = b"".join(chunks)
    content_type = response.headers.get("Content-Type") or "application/octet-stream"
    return Logo(data, content_type, hashlib.sha256(data).hexdigest()[:32], credentials)


def init_app(app: Flask) -> None:
    app.extensions["eventory_logos"] = BytesBoundLRU(KEPT_BYTES)


@login_changed.connect
def _forget_logo(app: Flask, login_id: int) -> None:
    """A login changed or is gone: its logo is read again (from its new organisation, perhaps)."""
    logos = app.extensions.get("eventory_logos")
    if logos is not None:
        logos.forget(login_id)
