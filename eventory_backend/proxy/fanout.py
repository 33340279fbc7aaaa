"""`/multisite`: one brokered GET for each login the user may use (their own and those shared
with them), in parallel, each answer in its own entry (one login's failure never fails the others)."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from werkzeug.exceptions import HTTPException

from ..logins import health
from ..logins import services as logins
from .broker import Credentials, TokenCache, token_cache
from .errors import StoredPasswordUnreadable
from .services import brokered_send, release_database
from .shared_reads import SharedReads, shared_reads
from .upstream import Answer, EventoryRequest, Upstream, upstream

log = logging.getLogger("eventory_backend.proxy")

TIMED_OUT = "Eventory did not answer in time."
TOO_LARGE = (
    "Eventory's answers together are larger than one fan-out may hold; ask for fewer logins at a time (?logins=...)."
)


class ByteBudget:
    """The bytes one fan-out may hold at once (BACKEND_FANOUT_MAX_BYTES), shared by its workers.
    An answer of known length takes its whole size up front, so answers that fit are read and
    the rest refused at once, rather than all of them read part-way and none finished."""

    def __init__(self, limit: int):
        self.left = limit
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if size > self.left:
                return False
            self.left -= size
            return True

    def give_back(self, size: int) -> None:
        with self._lock:
            self.left += size


class TooLarge(Exception):
    pass


@dataclass
class FanOutEntry:
    """One login's part of the answer, in FanOutResultSchema's shape (its credentials stay here)."""

    login_id: int
    label: str
    organisation: str | None
    color: str
    status: int | None = None
    data: Any = None
    error: str | None = None
    elapsed_ms: float = 0.0
    login_status: str = health.UNKNOWN
    logo_url: str = ""
    stale: bool = False
    age_s: int | None = None
    credentials: Credentials | None = field(default=None, repr=False)


def fan_out(
    user_id: int,
    request: EventoryRequest,
    *,
    login_ids: list[int] | None,
    concurrency: int,
    per_login_timeout: float,
    max_bytes: int,
) -> list[FanOutEntry]:
    """`request`, a GET, brokered with each login the user may use (or the chosen ones), in parallel."""
    entries = choose_logins(user_id, login_ids)
    release_database()
    run(
        entries,
        request,
        concurrency=concurrency,
        per_login_timeout=per_login_timeout,
        budget=ByteBudget(max_bytes),
    )
    # Read after the calls: a sign-in this fan-out made is already in it.
    login_statuses = health.statuses([entry.login_id for entry in entries])
    for entry in entries:
        entry.login_status = login_statuses.get(entry.login_id, entry.login_status)
    return entries


def choose_logins(user_id: int, login_ids: list[int] | None) -> list[FanOutEntry]:
    """An entry per login the user may use (their own and those shared with them), or per chosen
    login (404 for one they cannot see), with its stored credentials (the password checked
    readable now, decrypted again only to sign in), or the error it answers when the password
    cannot be read."""
    usable = logins.usable_logins(user_id)
    if login_ids is not None:
        known = {login.id for login in usable}
        for login_id in login_ids:
            if login_id not in known:
                raise logins.LoginNotFound(login_id)
        chosen = set(login_ids)
        usable = [login for login in usable if login.id in chosen]
    entries = []
    for login in usable:
        entry = FanOutEntry(login.id, login.label, login.organisation, login.color, logo_url=health.logo_url(login.id))
        if logins.readable_password(login) is None:
            entry.error = StoredPasswordUnreadable.description
        else:
            sealed = login.password_encrypted
            entry.credentials = Credentials(login.id, login.owner_id, login.username, sealed, logins.password_cipher())
        entries.append(entry)
    return entries


def run(
    entries: list[FanOutEntry],
    request: EventoryRequest,
    *,
    concurrency: int,
    per_login_timeout: float,
    budget: ByteBudget,
) -> None:
    """Fill in each entry that has credentials with its answer to `request`, `concurrency` at a
    time, holding no more bytes in all than `budget` allows; an entry still waiting at the
    deadline answers a timeout."""
    runnable = [entry for entry in entries if entry.credentials is not None]
    if not runnable:
        return
    up, cache, reads = upstream(), token_cache(), shared_reads()
    request = dataclasses.replace(request, timeout=(min(up.timeout[0], per_login_timeout), per_login_timeout))
    pool = ThreadPoolExecutor(max_workers=min(concurrency, len(runnable)), thread_name_prefix="fanout")
    try:
        started = time.monotonic()
        fetch = functools.partial(
            _fetch_one,
            up=up,
            cache=cache,
            reads=reads,
            request=request,
            budget=budget,
        )
        futures = [(entry, pool.submit(fetch, entry)) for entry in runnable]
        deadline = started + _time_allowed(len(runnable), concurrency, per_login_timeout)
        for entry, future in futures:
            try:
                answered = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                entry.error = TIMED_OUT
                entry.elapsed_ms = round((time.monotonic() - started) * 1000, 1)
            else:
                entry.status, entry.data, entry.error = answered.status, answered.data, answered.error
                entry.stale, entry.age_s = answered.stale, answered.age_s
                entry.elapsed_ms = answered.elapsed_ms
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _time_allowed(count: int, concurrency: int, per_login_timeout: float) -> float:
    """The whole fan-out's time: one per-login timeout for each round of `concurrency` calls."""
    return per_login_timeout * (1 + count // max(1, concurrency))


def _fetch_one(
    entry: FanOutEntry,
    *,
    up: Upstream,
    cache: TokenCache,
    reads: SharedReads,
    request: EventoryRequest,
    budget: ByteBudget,
) -> FanOutEntry:
    """This login's answer to `request`, in a copy of its entry: a worker still running past the
    deadline never touches the entry being sent to the client."""
    entry = dataclasses.replace(entry)
    started = time.monotonic()
    try:
        credentials = entry.credentials
        assert credentials is not None
        answer = reads.get(lambda: brokered_send(up, cache, credentials, request), credentials, request)
        entry.status = answer.status
        if answer.age is not None:
            entry.stale, entry.age_s = True, answer.age
        try:
            raw = _read_within(answer, budget)
        finally:
            answer.close()
        if raw:
            try:
                entry.data = json.loads(raw)
            except ValueError:
                entry.error = "Eventory's answer was not JSON."
        if entry.error is None and not 200 <= answer.status < 300:
            entry.error = f"Eventory answered {answer.status}."
    except TooLarge:
        entry.error = TOO_LARGE
    except HTTPException as error:
        entry.error = error.description
    except Exception as error:  # noqa: BLE001 - one login's failure never fails the others
        log.warning("fan-out login_id=%s failed error=%s", entry.login_id, type(error).__name__)
        entry.error = "Eventory's answer could not be read."
    finally:
        entry.elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    return entry


def _read_within(answer: Answer, budget: ByteBudget) -> bytes:
    """The answer's bytes (un-gzipped), taken from the fan-out's budget (given back if it does not fit whole)."""
    declared = answer.header("Content-Length") or ""
    if declared.isdigit() and answer.header("Content-Encoding") is None:
        if not budget.take(int(declared)):
            raise TooLarge()
        taken = int(declared)
    else:
        taken = 0
    chunks, size = [], 0
    try:
        for chunk in _plain(answer, budget):
            size += len(chunk)
            if size > taken:
                if not budget.take(size - taken):
                    raise TooLarge()
                taken = size
            chunks.append(chunk)
    except TooLarge:
        chunks.clear()
        budget.give_back(taken)
        raise
    return b"".join(chunks)


def _plain(answer: Answer, budget: ByteBudget) -> Iterator[bytes]:
    """The body's chunks, gzip or deflate undone (no more at once than the budget has left)."""
    encoding = (answer.header("Content-Encoding") or "identity").strip().lower()
    if encoding == "identity":
        yield from answer.body
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ValueError("an encoding the fan-out cannot read")
    decompressor = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)  # a gzip or zlib header
    for sent in answer.body:
        yield decompressor.decompress(sent, budget.left + 1)
        if decompressor.unconsumed_tail:
            raise TooLarge()
    yield decompressor.flush()
