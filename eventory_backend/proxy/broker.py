"""Signing in to Eventory with a stored login, and caching the Eventory token per exact credentials."""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from flask import Flask, current_app
from werkzeug.exceptions import GatewayTimeout

from ..logins import health
from ..logins.services import CredentialCipher, CredentialError, login_changed
from ..observability.metrics import Metrics, count_token_cache, counts_sign_ins, metrics_of
from .errors import EventoryRejectedLogin, EventoryUnavailable, EventoryUnavailableForSignIn, StoredPasswordUnreadable
from .upstream import EventoryRequest, Upstream

log = logging.getLogger("eventory_backend.proxy")

# What `Credentials.key` is a MAC under: new in every process, never stored or sent anywhere.
_KEY_SECRET = secrets.token_bytes(32)


@dataclass(frozen=True)
class Credentials:
    """What a worker needs to sign in, read from the database before any upstream call: the
    login, its owner, and the Eventory username and encrypted password stored for it at that
    moment. The password is decrypted only to sign in: a call served by a cached token never
    decrypts it.

    `key` identifies these exact credentials in this process (the token cache, shared reads, stale
    answers and logos are kept under it): a keyed BLAKE2b MAC, under a per-process secret, of the
    login, owner, username and stored (encrypted) password, so a change of password is a new key
    and no plaintext password is kept. Computed once, when the credentials are read."""

    login_id: int
    owner_id: int
    username: str
    sealed_password: str  # the stored Fernet token
    cipher: CredentialCipher
    key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = (str(self.login_id), str(self.owner_id), self.username, self.sealed_password)
        message = "\0".join(fields).encode("utf-8", "surrogatepass")
        object.__setattr__(self, "key", hashlib.blake2b(message, key=_KEY_SECRET, digest_size=32).digest())

    def password(self) -> str:
        """The plaintext password; 500 (before anything is sent) when no configured key reads it."""
        try:
            return self.cipher.decrypt(self.sealed_password)
        except CredentialError:
            log.error("stored password unreadable login_id=%s", self.login_id)
            raise StoredPasswordUnreadable() from None

    def __repr__(self) -> str:  # never print the password, even encrypted
        return f"Credentials(login_id={self.login_id})"


@dataclass
class _Token:
    value: str
    expires: float
    login_id: int


class _Rejection(NamedTuple):
    expires: float  # the back-off's end
    login_id: int


_Entry = TypeVar("_Entry", _Token, _Rejection)


class _SignInLock:
    """One credentials' sign-in lock and how many callers hold or wait for it (counted under the cache's lock)."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


class TokenCache:
    """Eventory tokens in this process, each kept under the exact credentials it was signed in
    with (login, owner, username, password), never under a login id alone: a login changed or
    deleted by any process or instance, an id handed to a new login, or a call that read the old
    credentials while another changed them can only find a token signed in with what it sends.

    Credentials Eventory rejected are remembered the same way and not tried again until they
    change or `rejection_backoff` seconds pass: a brokered call answers the same 502 meanwhile
    without asking Eventory (no password guessing through the broker, no lock-out of this
    server's address). One sign-in at a time per credentials. It reports to the app's `metrics`
    it was built with (fan-out threads have no app context), and tells `on_sign_in` how each
    sign-in went (the login's health).
    """

    MAX_ENTRIES = 10_000  # tokens, and rejections, each: past this, expired ones go, then the oldest

    def __init__(
        self,
        ttl: float,
        rejection_backoff: float = 900.0,
        metrics: Metrics | None = None,
        on_sign_in: Callable[[Credentials, str], None] | None = None,
    ):
        self.ttl = ttl
        self.rejection_backoff = rejection_backoff
        self.metrics = metrics
        self.on_sign_in = on_sign_in
        # Keyed by `Credentials.key`: a change of password is a new key.
        self._lock = threading.Lock()
        self._tokens: dict[bytes, _Token] = {}
        # Both in the order they were remembered, which is the order they expire (one TTL, one back-off).
        self._rejected: dict[bytes, _Rejection] = {}
        # Only while someone signs in or waits to: a sign-in that fails remembers nothing, and must
        # leave nothing behind either.
        self._sign_in_locks: dict[bytes, _SignInLock] = {}

    @contextmanager
    def _signing_in(self, key: bytes) -> Iterator[None]:
        """Hold the credentials' sign-in lock; it goes from the table once nobody holds or waits for it."""
        with self._lock:
            entry = self._sign_in_locks.get(key)
            if entry is None:
                entry = self._sign_in_locks[key] = _SignInLock()
            entry.users += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._lock:
                entry.users -= 1
                if not entry.users:
                    del self._sign_in_locks[key]

    def logins_held(self) -> set[int]:
        """The logins this process holds a live token for (for inspection; it hands out none)."""
        now = time.monotonic()
        with self._lock:
            return {entry.login_id for entry in self._tokens.values() if entry.expires > now}

    def _usable(self, key: bytes, stale: str | None) -> str | None:
        """The cached token unless it is missing, expired or the `stale` one; counted as a hit."""
        with self._lock:
            entry = self._tokens.get(key)
        if entry is not None and entry.expires > time.monotonic() and entry.value != stale:
            count_token_cache(True, self.metrics)
            return entry.value
        return None

    def _check_not_rejected(self, key: bytes, login_id: int) -> None:
        with self._lock:
            rejected = self._rejected.get(key)
        if rejected is not None and rejected.expires > time.monotonic():
            log.info("eventory sign-in skipped, credentials rejected before login_id=%s", login_id)
            raise EventoryRejectedLogin()

    def token(self, credentials: Credentials, upstream: Upstream, *, stale: str | None = None) -> str:
        """A valid-looking token for these credentials, signing in if there is none (or only `stale`)."""
        key = credentials.key
        token = self._usable(key, stale)
        if token:
            return token
        self._check_not_rejected(key, credentials.login_id)
        with self._signing_in(key):
            # Whoever held the lock before us may have signed in (or been refused) already.
            token = self._usable(key, stale)
            if token:
                return token
            self._check_not_rejected(key, credentials.login_id)
            count_token_cache(False, self.metrics)
            return self._sign_in(key, credentials, upstream)

    def check(self, credentials: Credentials, upstream: Upstream) -> None:
        """Sign in now, whatever token or rejection is remembered (POST /logins/<id>/check);
        raises as a sign-in does."""
        key = credentials.key
        with self._signing_in(key):
            self._sign_in(key, credentials, upstream)

    def _sign_in(self, key: bytes, credentials: Credentials, upstream: Upstream) -> str:
        """Sign in (under the credentials' lock), remember the token or the rejection, and report how it went."""
        try:
            token = sign_in(upstream, credentials)
        except EventoryRejectedLogin:
            self._remember(
                self._rejected, key, _Rejection(time.monotonic() + self.rejection_backoff, credentials.login_id)
            )
            self._report(credentials, health.REJECTED)
            raise
        except (EventoryUnavailable, EventoryUnavailableForSignIn, GatewayTimeout):
            self._report(credentials, health.UNREACHABLE)
            raise
        with self._lock:
            self._rejected.pop(key, None)
        self._remember(self._tokens, key, _Token(token, time.monotonic() + self.ttl, credentials.login_id))
        self._report(credentials, health.OK)
        return token

    def _report(self, credentials: Credentials, status: str) -> None:
        if self.on_sign_in is not None:
            self.on_sign_in(credentials, status)

    def _remember(self, table: dict[bytes, _Entry], key: bytes, value: _Entry) -> None:
        """Keep `value` as the newest of `table` (the tokens or the rejections), at most MAX_ENTRIES of them."""
        with self._lock:
            table.pop(key, None)  # to the end: the newest, so the last to expire
            if len(table) >= self.MAX_ENTRIES:
                self._sweep(table)
            table[key] = value

    def _sweep(self, table: dict[bytes, _Entry]) -> None:
        """Make room for one more (under the lock): the expired go, then the oldest. Entries expire
        in the order they were remembered, so both are at the front: no more is looked at."""
        now = time.monotonic()
        while table:
            oldest = next(iter(table))
            if table[oldest].expires > now and len(table) < self.MAX_ENTRIES:
                break
            del table[oldest]

    def drop(self, credentials: Credentials, stale: str) -> None:
        """Eventory refused `stale`: the next call signs in afresh (a newer token stays)."""
        key = credentials.key
        with self._lock:
            entry = self._tokens.get(key)
            if entry is not None and entry.value == stale:
                del self._tokens[key]

    def forget(self, login_id: int) -> None:
        """A login's credentials changed or it is gone: drop the tokens this process holds for it
        (no call could use them any more: they are kept under the old credentials). Rejections stay
        until their back-off passes: they, too, only match the credentials they were made with."""
        with self._lock:  # in place: a token remembered meanwhile must not land in a dict let go
            for key in [key for key, entry in self._tokens.items() if entry.login_id == login_id]:
                del self._tokens[key]


@counts_sign_ins(rejected=EventoryRejectedLogin)
def sign_in(upstream: Upstream, credentials: Credentials) -> str:
    """POST login-json with the stored username and password; the Eventory token."""
    form = {"username": credentials.username, "password": credentials.password()}
    response = upstream.send(EventoryRequest("POST", "login-json", headers={"Accept": "application/json"}, form=form))
    try:
        if response.status_code in (400, 401, 403, 422):
            log.warning("eventory sign-in rejected login_id=%s status=%s", credentials.login_id, response.status_code)
            raise EventoryRejectedLogin()
        if response.status_code != 200:
            log.warning("eventory sign-in failed login_id=%s status=%s", credentials.login_id, response.status_code)
            raise EventoryUnavailableForSignIn()
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise EventoryUnavailableForSignIn() from None
        if not isinstance(token, str) or not token:
            raise EventoryUnavailableForSignIn()
        return token
    finally:
        response.close()


def init_app(app: Flask) -> None:
    def record(credentials: Credentials, status: str) -> None:
        health.record_sign_in(
            app, credentials.login_id, credentials.owner_id, credentials.username, credentials.sealed_password, status
        )

    app.extensions["eventory_tokens"] = TokenCache(
        app.config["EVENTORY_TOKEN_TTL"], app.config["EVENTORY_REJECTION_BACKOFF"], metrics_of(app), record
    )


def token_cache() -> TokenCache:
    return current_app.extensions["eventory_tokens"]


@login_changed.connect
def _forget_token(app: Flask, login_id: int) -> None:
    """A login changed or is gone: its cached Eventory token goes too."""
    cache = app.extensions.get("eventory_tokens")
    if cache is not None:
        cache.forget(login_id)
