"""GET /logins/<id>/logo: the organisation's logo from Eventory's `logo`, brokered with the login
and kept in memory per login (lru.py) for a day, so a frontend shows every logo with one
If-None-Match each and no Eventory token. A fetch that failed (an error, no logo, not an image,
too large, too slow) is remembered for ten minutes per credentials and answered from memory
meanwhile: a broken logo costs Eventory one call per ten minutes, not one per page view."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import requests
from flask import Flask, current_app
from werkzeug.exceptions import HTTPException, NotFound

from ..logins.services import login_changed
from .broker import Credentials, token_cache
from .errors import EventoryBrokenBody, EventoryUnavailable, StoredPasswordUnreadable
from .lru import BytesBoundLRU, Recent
from .services import brokered_send, credentials_for, release_database
from .upstream import EventoryRequest, read_chunk, upstream

LOGO = EventoryRequest("GET", "logo", headers={"Accept": "image/*"})
MAX_AGE = 24 * 60 * 60  # seconds a logo is served before Eventory is asked again
LARGEST = 1024 * 1024  # a larger "logo" is not an organisation's logo
KEPT_BYTES = 16 * 1024 * 1024  # every login's logo together, in this process
FAILURE_MEMORY = 10 * 60  # seconds a failed fetch is answered from memory
FAILURES_KEPT = 10_000  # failed fetches remembered per process, the oldest forgotten first


class NoLogo(NotFound):
    description = "Eventory has no logo for this login's organisation."


class LogoTooLarge(EventoryUnavailable):
    description = "Eventory's logo for this organisation is larger than 1 MiB; it is not served."


class NotAnImage(EventoryUnavailable):
    description = "Eventory's logo for this organisation is not an image; it is not served."


class RememberedFailure(HTTPException):
    """A failed fetch answered again from memory: the same status and detail."""

    def __init__(self, code: int, description: str | None):
        super().__init__(description)
        self.code = code


class Failures:
    """Failed fetches by credentials key (`Credentials.key`), each for FAILURE_MEMORY seconds, at
    most FAILURES_KEPT of them."""

    def __init__(self) -> None:
        self._failed: Recent[tuple[int, str | None]] = Recent()

    def remember(self, key: bytes, error: HTTPException) -> None:
        self._failed.remember(key, (error.code or 502, error.description), FAILURES_KEPT)

    def recall(self, key: bytes) -> RememberedFailure | None:
        found = self._failed.recall(key, FAILURE_MEMORY)
        return None if found is None else RememberedFailure(*found)

    def __len__(self) -> int:
        return len(self._failed)


@dataclass(frozen=True)
class Logo:
    data: bytes
    content_type: str
    etag: str  # unquoted
    credentials: bytes  # TokenCache.key of the credentials it was read with


def logo_of(user_id: int, login_id: int) -> Logo:
    """The logo of a login the user may use (their own or shared with them): kept, or read from
    Eventory once a day (or after a change of credentials); the kept one, however old, while
    Eventory is down or the refresh failed. A failed fetch is answered again from memory for
    FAILURE_MEMORY seconds without asking Eventory. 404 for a login they cannot see."""
    credentials = credentials_for(user_id, login_id)
    release_database()
    logos: BytesBoundLRU[Logo] = current_app.extensions["eventory_logos"]
    failures: Failures = current_app.extensions["eventory_logo_failures"]
    key = credentials.key
    kept = logos.get(login_id)
    if kept is not None and kept.value.credentials != key:
        kept = None
    if kept is not None and kept.age() < MAX_AGE:
        return kept.value
    failed = failures.recall(key)
    if failed is not None:
        if kept is not None:
            return kept.value
        raise failed
    try:
        logo = _fetch(credentials)
    except HTTPException as error:
        if not isinstance(error, StoredPasswordUnreadable):  # the server's keys, not Eventory: fixed by a restart
            failures.remember(key, error)
        if kept is None:
            raise
        return kept.value
    logos.keep(login_id, login_id, logo, len(logo.data))
    return logo


def _fetch(credentials: Credentials) -> Logo:
    response = brokered_send(upstream(), token_cache(), credentials, LOGO)
    return _read(response, credentials.key)


def _read(response: requests.Response, credentials: bytes) -> Logo:
    content_type = response.headers.get("Content-Type") or ""
    try:
        if response.status_code == 404:
            raise NoLogo()
        if response.status_code != 200:
            raise EventoryUnavailable(f"Eventory answered {response.status_code} to logo.")
        if not content_type.strip().lower().startswith("image/"):
            raise NotAnImage()
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
    return Logo(data, content_type, hashlib.sha256(data).hexdigest()[:32], credentials)


def init_app(app: Flask) -> None:
    app.extensions["eventory_logos"] = BytesBoundLRU(KEPT_BYTES)
    app.extensions["eventory_logo_failures"] = Failures()


@login_changed.connect
def _forget_logo(app: Flask, login_id: int) -> None:
    """A login changed or is gone: its logo is read again (from its new organisation, perhaps)."""
    logos = app.extensions.get("eventory_logos")
    if logos is not None:
        logos.forget(login_id)
