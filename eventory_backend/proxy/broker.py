"""Signing in to Eventory with a stored login, and caching the Eventory token per login."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from flask import Flask, current_app

from ..logins.services import login_changed
from ..observability.metrics import Metrics, count_token_cache, counts_sign_ins, metrics_of
from .errors import EventoryRejectedLogin, EventoryUnavailableForSignIn
from .upstream import Upstream

log = logging.getLogger("eventory_backend.proxy")


@dataclass(frozen=True)
class Credentials:
    """What a worker needs to sign in, read from the database before any upstream call."""

    login_id: int
    username: str
    password: str

    def __repr__(self) -> str:  # never print the password
        return f"Credentials(login_id={self.login_id})"


class TokenCache:
    """Eventory tokens per login, in this process; one sign-in at a time per login. It reports
    to the app's `metrics` it was built with (fan-out threads have no app context)."""

    def __init__(self, ttl: float, metrics: Metrics | None = None):
        self.ttl = ttl
        self.metrics = metrics
        self._lock = threading.Lock()
        self._tokens: dict[int, tuple[str, float]] = {}
        self._sign_in_locks: dict[int, threading.Lock] = {}
        self._generations: dict[int, int] = {}

    def _sign_in_lock(self, login_id: int) -> threading.Lock:
        with self._lock:
            return self._sign_in_locks.setdefault(login_id, threading.Lock())

    def cached(self, login_id: int) -> str | None:
        with self._lock:
            entry = self._tokens.get(login_id)
            if entry and entry[1] > time.monotonic():
                return entry[0]
            return None

    def _usable(self, login_id: int, stale: str | None) -> str | None:
        """The cached token unless it is missing, expired or the `stale` one; counted as a hit."""
        token = self.cached(login_id)
        if token and token != stale:
            count_token_cache(True, self.metrics)
            return token
        return None

    def token(self, credentials: Credentials, upstream: Upstream, *, stale: str | None = None) -> str:
        """A valid-looking token for the login, signing in if there is none (or only `stale`)."""
        token = self._usable(credentials.login_id, stale)
        if token:
            return token
        with self._sign_in_lock(credentials.login_id):
            # Whoever held the lock before us may have signed in already.
            token = self._usable(credentials.login_id, stale)
            if token:
                return token
            count_token_cache(False, self.metrics)
            with self._lock:
                generation = self._generations.get(credentials.login_id, 0)
            token = sign_in(upstream, credentials)
            with self._lock:
                # A login changed or deleted meanwhile must not get this token back.
                if self._generations.get(credentials.login_id, 0) == generation:
                    self._tokens[credentials.login_id] = (token, time.monotonic() + self.ttl)
            return token

    def drop(self, login_id: int, stale: str) -> None:
        """Eventory refused `stale`: the next call signs in afresh (a newer token stays)."""
        with self._lock:
            entry = self._tokens.get(login_id)
            if entry and entry[0] == stale:
                del self._tokens[login_id]

    def forget(self, login_id: int) -> None:
        with self._lock:
            self._tokens.pop(login_id, None)
            self._generations[login_id] = self._generations.get(login_id, 0) + 1


@counts_sign_ins(rejected=EventoryRejectedLogin)
def sign_in(upstream: Upstream, credentials: Credentials) -> str:
    """POST login-json with the stored username and password; the Eventory token."""
    response = upstream.send(
        "POST",
        "login-json",
        headers={"Accept": "application/json"},
        form={"username": credentials.username, "password": credentials.password},
    )
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
    app.extensions["eventory_tokens"] = TokenCache(app.config["EVENTORY_TOKEN_TTL"], metrics_of(app))


def token_cache() -> TokenCache:
    return current_app.extensions["eventory_tokens"]


@login_changed.connect
def _forget_token(app: Flask, login_id: int) -> None:
    """A login changed or is gone: its cached Eventory token goes too."""
    cache = app.extensions.get("eventory_tokens")
    if cache is not None:
        cache.forget(login_id)
