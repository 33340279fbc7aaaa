"""The last good answer to each brokered read, for when Eventory is down (BACKEND_STALE_IF_ERROR).

Kept in this process's memory only (lru.py), least recently used out past
BACKEND_STALE_CACHE_BYTES, an answer larger than an eighth of that not kept at all. What counts
against those bytes is what an entry holds: its key (the client's path and query among it), its
headers and its body, and the Python objects around them; an entry past the window goes with the
next sweep (any keep or answer, at most once a second), read again or not. Entries are keyed by
the exact credentials they were read with (see shared_reads.py), so no other login, and no later
username or password of the same login, ever finds one; a login changed or deleted drops its
entries at once.
"""

from __future__ import annotations

from collections.abc import Hashable
from itertools import chain
from sys import getsizeof

from .lru import BytesBoundLRU
from .upstream import Answer

# The largest share of the cache one answer may take: one download never empties it for the rest.
LARGEST_SHARE = 8
# What an entry holds besides its key's, headers' and chunks' own bytes (its places in the LRU, the
# tuples and list around them, its time, the allocator's rounding), rounded up from tracemalloc's
# count (tests/test_cache_bounds.py holds the cache to its cap measured that way).
ENTRY_OVERHEAD = 224
# A header besides its characters (its tuple, its place in the list, two str headers); a chunk
# besides its bytes (its bytes object's header, its place in the tuple).
HEADER_OVERHEAD = 72 + 2 * 49
CHUNK_OVERHEAD = 48


def footprint(key: Hashable) -> int:
    """The bytes a key holds: exact for strings, bytes and tuples of them (a brokered read's key:
    its path may take up to 4 bytes a character, so a str counts as stored, not by its length),
    the object's own size otherwise."""
    size = getsizeof(key)
    if type(key) is tuple:
        for part in key:
            size += footprint(part) if type(part) is tuple else getsizeof(part)
    return size


class StaleAnswers:
    """200 answers (headers and body chunks) by key, no older than `max_age` seconds when handed out."""

    def __init__(self, max_age: float, max_bytes: int):
        self.max_age = max_age
        self.largest = max_bytes // LARGEST_SHARE if max_age > 0 else 0
        self._kept: BytesBoundLRU[tuple[list[tuple[str, str]], tuple[bytes, ...]]] = BytesBoundLRU(max_bytes, max_age)

    @property
    def enabled(self) -> bool:
        return self.largest > 0

    def keep(
        self, key: Hashable, login_id: int, headers: list[tuple[str, str]], chunks: list[bytes], size: int | None = None
    ) -> None:
        """Remember a complete 200 answer (the newest replaces the one before); `size` is its
        chunks' bytes when the caller has counted them already."""
        if not self.enabled:
            return
        if size is None:
            size = sum(map(len, chunks))
        if size > self.largest:  # too large on its body alone: nothing else need be counted
            return
        size += (
            ENTRY_OVERHEAD
            + footprint(key)
            + sum(map(len, chain.from_iterable(headers)))
            + HEADER_OVERHEAD * len(headers)
            + CHUNK_OVERHEAD * len(chunks)
        )
        if size <= self.largest:
            self._kept.keep(key, login_id, (headers, tuple(chunks)), size)

    def answer(self, key: Hashable) -> Answer | None:
        """The kept answer, with its age, if it is young enough."""
        kept = self._kept.get(key) if self.enabled else None
        if kept is None:
            return None
        headers, chunks = kept.value
        return Answer(200, headers, iter(chunks), age=int(kept.age()))

    def forget(self, login_id: int) -> None:
        self._kept.forget(login_id)

    def size(self) -> int:
        """The bytes counted for every kept answer: key, headers, body and overhead."""
        return self._kept.size()
