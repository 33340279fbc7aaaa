"""One way to limit a route: the `limit` decorator, over the `limits` library's public API (its
fixed-window strategy and its storages: memory, or Redis when several instances count together).

A limit is tested before the view runs and counted only when the request gets through (or, with
`counted_when`, only when its answer is one that counts): a call this backend refuses costs
nothing, so a refused request never spends what the next one would need. A 429 carries
`Retry-After`: the seconds until the window that refused it starts over.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from flask.typing import ResponseReturnValue
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import HTTPException, TooManyRequests

from .memory_sweeper import sweep_in_one_thread

EXTENSION = "eventory_ratelimit"


class RateLimited(TooManyRequests):
    """A limit is spent; `retry_after` says when its window starts over."""

    def __init__(self, retry_after: int, description: str | None = None):
        super().__init__(description)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RateLimiter:
    """The app's storage and strategy (None when BACKEND_RATELIMIT_ENABLED is false)."""

    storage: Storage | None
    strategy: FixedWindowRateLimiter | None

    def check(self, limit: str, scope: str, key: str, cost: int = 1) -> None:
        """429 unless `cost` more calls fit every part of `limit` (e.g. `10/minute;100/hour`)."""
        if self.strategy is None:
            return
        for item in _parsed(limit):
            if cost > item.amount:  # never fits, however long the caller waits
                raise RateLimited(
                    item.get_expiry(),
                    f"This call counts as {cost} calls, more than the {item.amount} this limit allows in a whole "
                    "window; make smaller calls (a /multisite call counts once per login: choose some with ?logins=).",
                )
            if not self.strategy.test(item, scope, key, cost=cost):
                raise self._refusal(item, scope, key)

    def take(self, limit: str, scope: str, key: str, cost: int = 1) -> None:
        """Count `cost` calls, or answer 429 having counted nothing. One call against a single
        limit is counted straight away (one storage call on the relay's path, not two): a fixed
        window refuses it only when already full, where one more changes nothing it answers."""
        if cost > 1 or len(_parsed(limit)) > 1:
            self.check(limit, scope, key, cost)
        self.count(limit, scope, key, cost)

    def count(self, limit: str, scope: str, key: str, cost: int = 1) -> None:
        """Count `cost` calls against every part of `limit`; 429 if one no longer fits (two
        requests raced past `check`)."""
        if self.strategy is None:
            return
        refused = [item for item in _parsed(limit) if not self.strategy.hit(item, scope, key, cost=cost)]
        if refused:
            raise self._refusal(refused[0], scope, key)

    def _refusal(self, item: RateLimitItem, scope: str, key: str) -> RateLimited:
        assert self.strategy is not None
        reset_at, _remaining = self.strategy.get_window_stats(item, scope, key)
        return RateLimited(max(1, math.ceil(reset_at - time.time())))


@functools.lru_cache(maxsize=64)
def _parsed(limit: str) -> list[RateLimitItem]:
    return parse_many(limit)


def limiter() -> RateLimiter:
    return current_app.extensions[EXTENSION]


def limit(
    setting: str,
    key: Callable[[], str],
    scope: str,
    *,
    cost: Callable[[], int] | None = None,
    counted_when: Callable[[int], bool] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limit a view by the setting `setting` (a limit string such as `10/minute`, read per
    request), counted per `key()` in `scope` (views sharing a scope share one budget). `cost()`
    calls are counted for one request (default 1); with `counted_when`, only requests whose
    answer's status it accepts are counted (tested before the view all the same). Goes below the
    route's guard, so that a key that names the user reads a verified token."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            limits = limiter()
            if limits.strategy is None:
                return view(*args, **kwargs)
            amount = max(1, cost()) if cost is not None else 1
            setting_value, identity = current_app.config[setting], key()
            if counted_when is None:
                limits.take(setting_value, scope, identity, amount)
                return view(*args, **kwargs)
            limits.check(setting_value, scope, identity, amount)
            try:
                answer = current_app.make_response(view(*args, **kwargs))
            except HTTPException as error:
                if counted_when(error.code or 500):
                    limits.count(setting_value, scope, identity, amount)
                raise
            if counted_when(answer.status_code):
                limits.count(setting_value, scope, identity, amount)
            return answer

        return limited

    return decorate


def init_app(app: Flask) -> None:
    """The storage BACKEND_RATELIMIT_STORAGE_URI names, and the fixed-window strategy over it."""
    if not app.config["RATELIMIT_ENABLED"]:
        app.extensions[EXTENSION] = RateLimiter(None, None)
        return
    storage = storage_from_string(app.config["RATELIMIT_STORAGE_URI"])
    if not isinstance(storage, Storage):  # an async:// storage: this server's views are not coroutines
        raise ValueError("BACKEND_RATELIMIT_STORAGE_URI names an asynchronous storage; use memory:// or redis://.")
    sweep_in_one_thread(storage)
    app.extensions[EXTENSION] = RateLimiter(storage, FixedWindowRateLimiter(storage))
