"""One brokered call to Eventory shared by identical GETs (shared_reads.py decides which are
identical, and keeps the registry of calls in flight).

The first caller (the leader) sends the request; the others wait for its status and headers,
then every waiter reads the same body chunks as Eventory sends them. Whichever waiter needs the
next chunk first reads it from Eventory, so the read goes on while anyone still wants it, whoever
hung up; chunks every waiter has passed are let go (a slow waiter holds only what it has not
read, and at most AHEAD bytes of it: past that the faster ones wait for it, as they would for a
client that reads slowly; a client that stops reading is let go after BACKEND_PROXY_SEND_TIMEOUT
like any other). Late callers join only while the body's first chunk is still held; after that, or once
the answer is complete, an identical GET is a new call.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Protocol

import requests
from werkzeug.exceptions import HTTPException

from .errors import EventoryBrokenBody, EventoryUnavailable
from .stale import StaleAnswers
from .upstream import Answer, Upstream, body_ended, broke_before_it_began, read_chunk

log = logging.getLogger("eventory_backend.proxy")

# The most one call holds for its slowest waiter: what waitress itself holds for one slow client.
AHEAD = 16 * 1024 * 1024


class Registry(Protocol):
    """What a call needs of the registry it is in flight in (shared_reads.SharedReads)."""

    lock: threading.Lock
    cond: threading.Condition
    stale: StaleAnswers
    upstream: Upstream
    ahead: int

    def forget(self, flight: Flight) -> None: ...


class Flight:
    """One call to Eventory and the waiters reading its answer. Its state is guarded by the
    registry's one lock, so joining and letting go of the first chunk never race; waiters sleep on
    the registry's one condition, woken only when some waiter of this call sleeps (the usual call,
    with one waiter, never pays for a wake-up)."""

    __slots__ = (
        "reads", "key", "login_id", "lock", "cond", "sleepers", "ready", "error", "response", "status",
        "headers", "chunks", "base", "held", "reading", "done", "broken", "waiters", "kept", "kept_size",
    )  # fmt: skip

    def __init__(self, reads: Registry, key: Hashable, login_id: int):
        self.reads, self.key, self.login_id = reads, key, login_id
        self.lock, self.cond = reads.lock, reads.cond
        self.sleepers = 0  # waiters of this call asleep on `cond`
        self.ready = False
        self.error: BaseException | None = None
        self.response: requests.Response | None = None
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []  # chunk number `base + i` is chunks[i]
        self.base = 0
        self.held = 0  # bytes in `chunks`
        self.reading = False  # a waiter is reading the next chunk from Eventory
        self.done = False
        self.broken = False
        self.waiters: set[Reader] = set()
        self.kept: list[bytes] | None = None  # the whole body so far, for the stale cache
        self.kept_size = 0

    def send(self, send: Callable[[], requests.Response]) -> None:
        """The leader's part: send the request and let every waiter see its status and headers."""
        try:
            response = send()
        except BaseException as error:
            with self.lock:
                self.error, self.ready, self.done = error, True, True
                self.reads.forget(self)
                self._wake()
            raise
        with self.lock:
            self.response, self.status = response, response.status_code
            self.headers = list(response.raw.headers.items())
            self.kept = [] if response.status_code == 200 and self.reads.stale.enabled else None
            self.ready = True
            self._wake()

    def answer(self, reader: Reader) -> Answer:
        """The status and headers for `reader`, once the leader has them (its error, if it failed)."""
        with self.lock:
            while not self.ready:
                self._sleep()
            error = self.error
        if error is not None:
            reader.close()
            if isinstance(error, HTTPException):
                raise copy.copy(error)  # each waiter raises its own: tracebacks are per thread
            raise EventoryUnavailable()
        return Answer(self.status, self.headers, reader)

    def read_to_end(self, reader: Reader) -> bool:
        """Whether the answer is complete and `reader` has had all of it."""
        with self.lock:
            return self.done and not self.broken and reader.position == self.base + len(self.chunks)

    def next_chunk(self, reader: Reader) -> bytes:
        """The reader's next chunk, read from Eventory if nobody has yet; b"" at the end."""
        while True:
            with self.lock:
                while True:
                    index = reader.position - self.base
                    if index < len(self.chunks):
                        reader.position += 1
                        chunk = self.chunks[index]
                        if index == 0:
                            self._let_go()
                        return chunk
                    if self.broken:
                        raise EventoryBrokenBody("Eventory's answer broke off.")
                    if self.done:
                        return b""
                    if not self.reading and self.held < self.reads.ahead:
                        self.reading = True
                        break
                    self._sleep()
            self._read_one()

    def _read_one(self) -> None:
        """Read the next chunk from Eventory (outside the lock) for every waiter."""
        assert self.response is not None
        chunk, broken = b"", False
        try:
            chunk = read_chunk(self.response, self.reads.upstream.metrics)
        except EventoryBrokenBody:
            broken = True
        except Exception as error:  # noqa: BLE001 - the other waiters must never wait for a read that died
            log.warning("eventory body unreadable error=%s", type(error).__name__)
            broken = True
        finished: list[bytes] | None = None
        with self.lock:
            self.reading = False
            if chunk:
                self.chunks.append(chunk)
                self.held += len(chunk)
                self._keep(chunk)
            # The end is known with the last chunk (its Content-Length in): the answer is kept before
            # any waiter has that chunk, and no waiter asks Eventory for the b"" that would only say so.
            if broken or not chunk or body_ended(self.response):
                self.done, self.broken = True, broken
                self.reads.forget(self)
                finished = None if broken else self.kept
            self._wake()
        if self.done:
            self.response.close()
            if finished is not None:
                self.reads.stale.keep(self.key, self.login_id, self.headers, finished, self.kept_size)

    def _sleep(self) -> None:
        self.sleepers += 1
        try:
            self.cond.wait()
        finally:
            self.sleepers -= 1

    def _wake(self) -> None:
        if self.sleepers:
            self.cond.notify_all()

    def _keep(self, chunk: bytes) -> None:
        if self.kept is not None:
            self.kept_size += len(chunk)
            if self.kept_size > self.reads.stale.largest:
                self.kept = None
            else:
                self.kept.append(chunk)

    def _let_go(self) -> None:
        """Drop the chunks every waiter has read (under the lock); no one joins once the first is gone."""
        waiters = self.waiters
        if len(waiters) == 1:  # the usual call
            lowest = next(iter(waiters)).position
        else:
            lowest = min((waiter.position for waiter in waiters), default=self.base + len(self.chunks))
        if lowest > self.base:
            self.reads.forget(self)
            if self.held >= self.reads.ahead:
                self._wake()  # a faster waiter may read on
            self.held -= sum(map(len, self.chunks[: lowest - self.base]))
            del self.chunks[: lowest - self.base]
            self.base = lowest

    def leave(self, reader: Reader) -> None:
        close = False
        with self.lock:
            self.waiters.discard(reader)
            if not self.waiters and not self.done:
                # Everyone hung up before the end: nobody reads the rest.
                self.done = close = True
                self.reads.forget(self)
                self._wake()
            elif self.chunks:
                self._let_go()
        if close and self.response is not None:
            self.response.close()


class Reader:
    """One waiter's body: the flight's chunks from the first, each as soon as it is read."""

    __slots__ = ("flight", "position", "pending", "closed")

    def __init__(self, flight: Flight):
        self.flight = flight
        self.position = 0
        self.pending = b""
        self.closed = False

    def start(self) -> Iterable[bytes]:
        """Read the first chunk now (a body that breaks before it begins is still a 502, or stale
        in its place); the body to answer with: the whole of it at once when that chunk was all
        of it (the usual small answer, no more turns through the flight), else this reader."""
        try:
            first = self.flight.next_chunk(self)
        except EventoryBrokenBody:
            self.close()
            raise broke_before_it_began() from None
        if self.flight.read_to_end(self):
            self.close()
            return (first,) if first else ()
        self.pending = first
        return self

    def __iter__(self) -> Reader:
        return self

    def __next__(self) -> bytes:
        if self.pending:
            chunk, self.pending = self.pending, b""
            return chunk
        if self.closed:
            raise StopIteration
        try:
            chunk = self.flight.next_chunk(self)
        except BaseException:
            self.close()
            raise
        if not chunk:
            self.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.flight.leave(self)
