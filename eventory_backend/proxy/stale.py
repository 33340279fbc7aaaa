"""The last good answer to each brokered read, for when Eventory is down (BACKEND_STALE_IF_ERROR).

Kept in this process's memory only (never written anywhere), least recently used out past
BACKEND_STALE_CACHE_BYTES, an answer larger than an eighth of that not kept at all. Entries are
keyed by the exact credentials they were read with (see shared_reads.py), so no other login, and
no later username or password of the same login, ever finds one; a login changed or deleted
drops its entries at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from .upstream import Answer

# The largest share of the cache one answer may take: one download never empties it for the rest.
LARGEST_SHARE = 8


@dataclass(frozen=True)
class _Entry:
    login_id: int
    headers: list[tuple[str, str]]
    chunks: tuple[bytes, ...]
    size: int
    stored: float  # time.monotonic()


class StaleAnswers:
    """200 answers by key, no older than `max_age` seconds when handed out, `max_bytes` in all."""

    def __init__(self, max_age: float, max_bytes: int):
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.largest = max_bytes // LARGEST_SHARE if max_age > 0 else 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._size = 0

    @property
    def enabled(self) -> bool:
        return self.largest > 0

    def keep(self, key: Hashable, login_id: int, headers: list[tuple[str, str]], chunks: list[bytes]) -> None:
        """Remember a complete 200 answer (the newest replaces the one before)."""
        size = sum(map(len, chunks))
        if not self.enabled or size > self.largest:
            return
        entry = _Entry(login_id, headers, tuple(chunks), size, time.monotonic())
        with self._lock:
            self._drop(key)
            self._entries[key] = entry
            self._size += size
            while self._size > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def answer(self, key: Hashable) -> Answer | None:
        """The kept answer, with its age, if it is young enough; an older one is dropped."""
        if not self.enabled:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            age = time.monotonic() - entry.stored
            if age > self.max_age:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
        return Answer(200, entry.headers, iter(entry.chunks), age=int(age))

    def forget(self, login_id: int) -> None:
        """The login changed or is gone: none of its answers may be handed out again."""
        with self._lock:
            for key in [key for key, entry in self._entries.items() if entry.login_id == login_id]:
                self._drop(key)

    def size(self) -> int:
        with self._lock:
            return self._size

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._size -= entry.size
