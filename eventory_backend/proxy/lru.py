"""Per-login values kept in this process's memory, bounded in bytes, least recently used out:
the stale answers (stale.py) and the logos (logos.py). Never written anywhere."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, NamedTuple, TypeVar

Value = TypeVar("Value")


class Kept(NamedTuple, Generic[Value]):  # a tuple: made on every kept answer, so made cheaply
    login_id: int
    value: Value
    size: int
    stored: float  # time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self.stored


class BytesBoundLRU(Generic[Value]):
    """Values by key, `max_bytes` of them in all; each remembers its login, so a login's go at once."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Kept[Value]] = OrderedDict()
        self._size = 0

    def keep(self, key: Hashable, login_id: int, value: Value, size: int) -> None:
        """Remember `value` (replacing the key's last one), dropping the least recently used past the bound."""
        if size > self.max_bytes:
            return
        kept = Kept(login_id, value, size, time.monotonic())
        with self._lock:
            self._drop(key)
            self._entries[key] = kept
            self._size += size
            while self._size > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def get(self, key: Hashable) -> Kept[Value] | None:
        with self._lock:
            kept = self._entries.get(key)
            if kept is not None:
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

    def _drop(self, key: Hashable) -> None:
        kept = self._entries.pop(key, None)
        if kept is not None:
            self._size -= kept.size
