"""A workaround: the in-memory rate-limit storage's expired entries are swept by one long-lived
thread per process instead of a new thread started on most requests.

Why: `limits`' MemoryStorage (the default storage, `memory://`) starts a 10 ms
`threading.Timer` on a hit whenever its last one has ended, which on a server that is not busy is
nearly every request. Starting a thread costs about as much CPU as the rest of a relayed request,
and the request waits for the new thread to start (bench/README.md has the figures). Expired
counters are also dropped when they are next read, so the sweep only keeps the memory of keys
nobody uses again in bounds: once a second is enough.

How: one daemon thread, started with the first app, sweeps every registered MemoryStorage once a
second (holding them weakly, so an app that is gone takes its storage with it), and is set as
each storage's `timer`: MemoryStorage starts a new timer only when `timer.is_alive()` is false.

Under the public API: the storage's `timer` attribute and its private `__expire_events` method;
checked against limits 5.8 (pinned in requirements.txt). tests/test_library_workarounds.py fails
if either changes. If the method is missing, the storage is left as it is (its own timers, as
before).
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
_EXPIRE = "_MemoryStorage__expire_events"  # MemoryStorage.__expire_events, name-mangled


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
                    getattr(storage, _EXPIRE)()
                except Exception as error:  # noqa: BLE001 - the sweeper must outlive one bad sweep
                    log.warning("rate-limit sweep failed error=%s", type(error).__name__)
            del storages  # let a storage nobody else holds go before the next sleep


_lock = threading.Lock()
_sweeper: _Sweeper | None = None


def sweep_in_one_thread(storage: Any) -> bool:
    """Let the process's sweeper expire `storage`'s entries (a MemoryStorage); whether it took over."""
    global _sweeper
    if not isinstance(storage, MemoryStorage) or not callable(getattr(storage, _EXPIRE, None)):
        return False
    with _lock:
        if _sweeper is None or not _sweeper.is_alive():
            _sweeper = _Sweeper()
            _sweeper.start()
        _sweeper.storages.add(storage)
        storage.timer = _sweeper  # type: ignore[assignment]  # alive: the storage starts no timer of its own
    return True
