"""The last good answer to each brokered read, for when Eventory is down (BACKEND_STALE_IF_ERROR).

Kept in this process's memory only (lru.py), least recently used out past
BACKEND_STALE_CACHE_BYTES, an answer larger than an eighth of that not kept at all. Entries are
keyed by the exact credentials they were read with (see shared_reads.py), so no other login, and
no later username or password of the same login, ever finds one; a login changed or deleted
drops its entries at once.
"""

from __future__ import annotations

from collections.abc import Hashable

from .lru import BytesBoundLRU
from .upstream import Answer

# The largest share of the cache one answer may take: one download never empties it for the rest.
LARGEST_SHARE = 8


class StaleAnswers:
    """200 answers (headers and body chunks) by key, no older than `max_age` seconds when handed out."""

    def __init__(self, max_age: float, max_bytes: int):
        self.max_age = max_age
        self.largest = max_bytes // LARGEST_SHARE if max_age > 0 else 0
        self._kept: BytesBoundLRU[tuple[list[tuple[str, str]], tuple[bytes, ...]]] = BytesBoundLRU(max_bytes)

    @property
    def enabled(self) -> bool:
        return self.largest > 0

    def keep(
        self, key: Hashable, login_id: int, headers: list[tuple[str, str]], chunks: list[bytes], size: int | None = None
    ) -> None:
        """Remember a complete 200 answer (the newest replaces the one before); `size` is its
        chunks' bytes when the caller has counted them already."""
        if size is None:
            size = sum(map(len, chunks))
        if self.enabled and size <= self.largest:
            self._kept.keep(key, login_id, (headers, tuple(chunks)), size)

    def answer(self, key: Hashable) -> Answer | None:
        """The kept answer, with its age, if it is young enough; an older one is dropped."""
        kept = self._kept.get(key) if self.enabled else None
        if kept is None:
            return None
        age = kept.age()
        if age > self.max_age:
            self._kept.drop(key)
            return None
        headers, chunks = kept.value
        return Answer(200, headers, iter(chunks), age=int(age))

    def forget(self, login_id: int) -> None:
        self._kept.forget(login_id)

    def size(self) -> int:
        return self._kept.size()
