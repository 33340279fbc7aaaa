"""A workaround: the in-memory rate-limit storage's expired counters are swept by one long-lived
thread per process instead of a new thread started on most requests.

Why: `limits`' MemoryStorage (the default storage, `memory://`) starts a 10 ms
`threading.Timer` on a hit whenever its last one has ended, which on a server that is not busy is
nearly every request, and under load one request in a few. Starting a thread costs about as much
CPU as the rest of a relayed request, and the request waits for the new thread to run
(bench/README.md has the figures). Expired counters are also dropped when they are next read, so
the sweep only keeps the memory of keys nobody uses again in bounds: once a second is enough.

How, on the storage's public names: one daemon thread, started with the first app, is set as
each storage's `timer` (MemoryStorage starts a timer of its own only when `timer.is_alive()` is
false); once a second it reads which counters are past their expiry (`expirations`) and drops
each through the storage's own `get`, which drops a counter past its expiry (as any request
reading that counter would). Storages are held weakly, so an app that is gone takes its storage with it.
The limiter uses the fixed window only: no moving-window entries (`events`) are ever made.

Checked against limits 5.8 (pinned in requirements.txt): tests/test_library_workarounds.py fails
if a swept storage starts threads of its own again, or if its expired counters are not dropped.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from limits.storage import MemoryStorage

log = logging.getLogger("eventory_backend.ratelimit")

SWEEP_SECONDS = 1.0


def sweep(storage: MemoryStorage) -> None:
    """Drop `storage`'s counters that are past their expiry."""
    now = time.time()
    for key, expiry in list(storage.expirations.items()):
        if expiry <= now:
            storage.get(key)  # drops it: MemoryStorage.get forgets a counter past its expiry


class _Sweeper(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="rate-limit-sweeper", daemon=True)
        self.storages: weakref.WeakSet[MemoryStorage] = weakref.WeakSet()

    def run(self) -> None:
        while True:
            time.sleep(SWEEP_SECONDS)
            with _lock:
                storages = list(self.storages)
            for storage in storages:
                try:
                    sweep(storage)
                except Exception as error:  # noqa: BLE001 - the sweeper must outlive one bad sweep
                    log.warning("rate-limit sweep failed error=%s", type(error).__name__)
            del storages  # let a storage nobody else holds go before the next sleep


_lock = threading.Lock()
_sweeper: _Sweeper | None = None


def sweep_in_one_thread(storage: Any) -> bool:
    """Let the process's sweeper expire `storage`'s counters (a MemoryStorage); whether it took over."""
    global _sweeper
    if not isinstance(storage, MemoryStorage):
        return False
    with _lock:
        if _sweeper is None or not _sweeper.is_alive():
            _sweeper = _Sweeper()
            _sweeper.start()
        _sweeper.storages.add(storage)
        storage.timer = _sweeper  # type: ignore[assignment]  # alive: the storage starts no timer of its own
    return True
