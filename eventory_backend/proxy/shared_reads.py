"""Brokered reads: identical concurrent GETs share one call to Eventory, streamed to every
waiter, and the last good answer stands in when Eventory is down (stale.py).

Two brokered GETs are identical when they are made with the same stored credentials (login,
owner, username and password: never across logins, nor across a change of password), for the
same path and query, accepting the same representation (Accept, Accept-Encoding,
Accept-Language). Relayed calls and fan-out entries share alike. A GET with a conditional or
range header is sent on its own: its answer is not everyone's.

flight.py has how one call is shared by its waiters.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

import requests
from flask import Flask, current_app
from werkzeug.exceptions import GatewayTimeout

from ..logins.services import login_changed
from .broker import Credentials
from .errors import EventoryUnavailable, EventoryUnavailableForSignIn
from .flight import AHEAD, Flight, Reader
from .stale import StaleAnswers
from .upstream import Answer, EventoryRequest, Upstream

# Headers that make an answer the asker's own: such a GET is never shared.
_OWN_ANSWER = frozenset({"range", "if-range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since"})
# Eventory could not be asked, did not answer in time, or could not sign in: a stale answer may stand in.
_DOWN = (EventoryUnavailable, EventoryUnavailableForSignIn, GatewayTimeout)


def _representation(headers: dict[str, str]) -> tuple[str, str, str]:
    """What a waiter's own answer depends on besides the path and query (`headers` by lower-case
    name): no Accept-Encoding goes out as identity, so the fan-out's and a relayed identity GET's are one."""
    get = headers.get
    return (
        get("accept", "").strip().lower(),
        get("accept-encoding", "identity").strip().lower(),
        get("accept-language", "").strip().lower(),
    )


class SharedReads:
    """The calls to Eventory in flight in this process, and the last good answers (`stale`)."""

    def __init__(self, upstream: Upstream, stale: StaleAnswers):
        self.upstream, self.stale = upstream, stale
        self.ahead = AHEAD
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self._flights: dict[Hashable, Flight] = {}

    def get(self, send: Callable[[], requests.Response], credentials: Credentials, request: EventoryRequest) -> Answer:
        """Eventory's answer to `request`, a GET brokered with `credentials`, `send` called by the
        leader of identical ones; a stale answer when Eventory is down, if one is young enough."""
        lowered = {name.lower(): value for name, value in request.headers.items()}
        if not _OWN_ANSWER.isdisjoint(lowered):
            return Answer.streamed(send())
        key = (credentials.key, request.path, request.query, _representation(lowered))
        try:
            answer = self._read(key, credentials.login_id, send)
        except _DOWN:
            stale = self.stale.answer(key)
            if stale is None:
                raise
            return stale
        if answer.status >= 500:
            stale = self.stale.answer(key)
            if stale is not None:
                answer.close()
                return stale
        return answer

    def _read(self, key: Hashable, login_id: int, send: Callable[[], requests.Response]) -> Answer:
        with self.lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = Flight(self, key, login_id)
            reader = Reader(flight)
            flight.waiters.add(reader)
        if leader:
            try:
                flight.send(send)
            except BaseException:
                reader.close()
                raise
        answer = flight.answer(reader)
        answer.body = reader.start()
        return answer

    def forget(self, flight: Flight) -> None:
        """No one else joins `flight` (called under the lock)."""
        if self._flights.get(flight.key) is flight:
            del self._flights[flight.key]

    def in_flight(self) -> int:
        with self.lock:
            return len(self._flights)


def init_app(app: Flask) -> None:
    stale = StaleAnswers(app.config["STALE_IF_ERROR"], app.config["STALE_CACHE_BYTES"])
    app.extensions["eventory_reads"] = SharedReads(app.extensions["eventory_upstream"], stale)


def shared_reads() -> SharedReads:
    return current_app.extensions["eventory_reads"]


@login_changed.connect
def _forget_stale_answers(app: Flask, login_id: int) -> None:
    """A login changed or is gone: its last good answers go too."""
    reads: Any = app.extensions.get("eventory_reads")
    if reads is not None:
        reads.stale.forget(login_id)
