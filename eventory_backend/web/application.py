"""The Flask class the backend runs as."""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from types import MethodType
from typing import Any

from flask import Flask


class Application(Flask):
    """Flask, asking once per function whether it is a coroutine function.

    Flask passes every hook, view and error handler it calls through `ensure_sync`, which asks
    `inspect.iscoroutinefunction` each time: eleven times per relayed request, with the same answer
    for a given function every time. `ensure_sync` is Flask's documented place to change how an app
    runs its functions; this one remembers the plain (not async) ones, weakly, so a function made
    for one request (`after_this_request`) is forgotten with it. Async functions are still run
    through `async_to_sync`, as Flask does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plain_functions: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        # A bound method is made anew at each access; whether it is async is its function's answer.
        target = func.__func__ if type(func) is MethodType else func
        try:
            if target in self._plain_functions:
                return func
        except TypeError:  # not hashable: ask every time
            return super().ensure_sync(func)
        if inspect.iscoroutinefunction(func):
            return self.async_to_sync(func)
        try:
            self._plain_functions.add(target)
        except TypeError:  # not weakly referable: asked again next time
            pass
        return func
