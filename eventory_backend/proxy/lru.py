"""Values kept in this process's memory, never written anywhere: per-login values bounded in
bytes, least recently used out (the stale answers, stale.py, and the logos, logos.py); and
recent events by key, bounded in number, the longest remembered out (when /check last signed in,
checks.py, and which logo fetches failed, logos.py)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, NamedTuple, TypeVar

Value = TypeVar("Value")

SWEEP_INTERVAL = 1.0  # seconds between two sweeps of the values past `max_age`


class Kept(NamedTuple, Generic[Value]):  # a tuple: made on every kept answer, so made cheaply
    login_id: int
    value: Value
    size: int
    stored: float  # time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self.stored


class BytesBoundLRU(Generic[Value]):
    """Values by key, `max_bytes` of them in all (as the caller counts them); each remembers its
    login, so a login's go at once. With a `max_age`, a value older than that is never handed out,
    and any later keep or get sweeps out every such value (at most once a second), read again or
    not; without one (the logos, served however old while Eventory is down) values stay until
    pushed out."""

    def __init__(self, max_bytes: int, max_age: float | None = None):
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Kept[Value]] = OrderedDict()  # least recently used first
        # With a `max_age`: when each key was stored, oldest first, so a sweep reads only what it drops.
        self._stored: OrderedDict[Hashable, float] = OrderedDict()
        self._size = 0
        self._next_sweep = 0.0

    def keep(self, key: Hashable, login_id: int, value: Value, size: int) -> None:
        """Remember `value` (replacing the key's last one), dropping the least recently used past the bound."""
        if size > self.max_bytes:
            return
        now = time.monotonic()
        kept = Kept(login_id, value, size, now)
        with self._lock:
            if self.max_age is not None and now >= self._next_sweep:
                self._sweep(now, self.max_age)
            self._drop(key)
            self._entries[key] = kept
            if self.max_age is not None:
                self._stored[key] = now
            self._size += size
            while self._size > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def get(self, key: Hashable) -> Kept[Value] | None:
        """The key's value, unless it is past `max_age` (then it goes)."""
        if self.max_age is None:
            with self._lock:
                kept = self._entries.get(key)
                if kept is not None:
                    self._entries.move_to_end(key)
                return kept
        now = time.monotonic()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now, self.max_age)
            kept = self._entries.get(key)
            if kept is None:
                return None
            if now - kept.stored > self.max_age:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return kept

    def drop(self, key: Hashable) -> None:
        with self._lock:
            self._drop(key)

    def forget(self, login_id: int) -> None:
        """The login changed or is gone: none of its values may be handed out again."""
        with self._lock:
            for key in [key for key, kept in self._entries.items() if kept.login_id == login_id]:
                self._drop(key)

    def size(self) -> int:
        with self._lock:
            return self._size

    def _sweep(self, now: float, max_age: float) -> None:
        """Drop every value past `max_age` (under the lock), oldest stored first: as many steps as
        values dropped, however many are kept."""
        self._next_sweep = now + SWEEP_INTERVAL
        oldest = now - max_age
        stored = self._stored
        while stored:
            key, at = next(iter(stored.items()))
            if at >= oldest:
                break
            self._drop(key)

    def _drop(self, key: Hashable) -> None:
        kept = self._entries.pop(key, None)
        if kept is not None:
            self._size -= kept.size
            self._stored.pop(key, None)


class Recent(Generic[Value]):
    """Values by key with when each was remembered, the longest remembered out first past a
    bound. The age that still counts and the bound are the caller's, given on each call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, Value]] = OrderedDict()  # oldest first

    def remember(self, key: Hashable, value: Value, most: int) -> None:
        """Remember `value` now (replacing the key's last one), keeping at most `most` keys."""
        with self._lock:
            self._remember(key, value, most, time.monotonic())

    def recall(self, key: Hashable, max_age: float) -> Value | None:
        """The key's value if it was remembered less than `max_age` seconds ago (an older one goes)."""
        now = time.monotonic()
        with self._lock:
            found = self._entries.get(key)
            if found is not None and now - found[0] >= max_age:
                del self._entries[key]
                found = None
        return None if found is None else found[1]

    def claim(self, key: Hashable, value: Value, max_age: float, most: int) -> bool:
        """Remember `value` now unless the key has one younger than `max_age`; whether it did (at
        once, so two callers never both claim)."""
        now = time.monotonic()
        with self._lock:
            found = self._entries.get(key)
            if found is not None and now - found[0] < max_age:
                return False
            self._remember(key, value, most, now)
            return True

    def __len__(self) -> int:
        return len(self._entries)

    def _remember(self, key: Hashable, value: Value, most: int, now: float) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (now, value)
        while len(self._entries) > most:
            self._entries.popitem(last=False)
