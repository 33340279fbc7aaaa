"""Rate limits: who each limit counts against, and every route's limit (its setting is read per
request, not at import).

A limit keyed by the user reads the token its route's guard verified: the guard decorator
(`login_required`, or `identified` on the relay) goes above the limit's decorator, so it runs
first, and the token is verified once per request.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections.abc import Callable
from typing import NoReturn

from flask import Flask, Response, current_app, request
from flask_jwt_extended import get_jwt
from limits import RateLimitItem, parse_many
from werkzeug.exceptions import TooManyRequests

from .extensions import limiter
from .limiter_app_wide_pass import skip_app_wide_pass_without_app_wide_limits
from .limiter_memory_sweeper import sweep_in_one_thread
from .web.fields import folded


def client_address() -> str:
    """The socket's address, or the client behind a trusted proxy (see web/middleware.py)."""
    return request.remote_addr or "unknown"


def client_network() -> str:
    """What a per-address limit counts against: the client's IPv4 address, or its IPv6 /64 (one
    client commonly holds a whole /64, and could otherwise take a new budget per address)."""
    address = client_address()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return address


def failed_login(response: Response) -> bool:
    """Only wrong passwords count against a username: its owner is never locked out by others'
    guesses while the right password still works within the limit."""
    return response.status_code == 401


def login_username() -> str:
    """The username a login attempt names, folded: a spread of addresses against one name counts together."""
    name = request.form.get("username")
    if name is None:
        body = request.get_json(silent=True)
        name = body.get("username") if isinstance(body, dict) else None
    return "username:" + (folded(name)[:256] if isinstance(name, str) else "-")


def current_user_or_address() -> str:
    """The user whose token the route's guard verified, or the address for anonymous (public relay) calls."""
    try:
        identity = get_jwt().get("sub")
    except RuntimeError:  # no guard verified a token in this request
        identity = None
    return f"user:{identity}" if identity else f"address:{client_network()}"


def setting(name: str):
    return lambda: current_app.config[name]


login_per_address = limiter.limit(setting("RATELIMIT_LOGIN"), key_func=client_network, scope="login-address")
login_per_username = limiter.limit(
    setting("RATELIMIT_LOGIN"), key_func=login_username, scope="login-username", deduct_when=failed_login
)
register_per_address = limiter.limit(setting("RATELIMIT_REGISTER"), key_func=client_network, scope="register")
password_per_user = limiter.limit(setting("RATELIMIT_PASSWORD"), key_func=current_user_or_address, scope="password")
audit_per_user = limiter.limit(setting("RATELIMIT_AUDIT"), key_func=current_user_or_address, scope="audit")
# One budget for every write to /logins (save, change, delete), per user.
logins_write_per_user = limiter.shared_limit(
    setting("RATELIMIT_LOGINS_WRITE"), scope="logins-write", key_func=current_user_or_address
)


@functools.lru_cache(maxsize=32)
def _parsed(limit: str) -> list[RateLimitItem]:
    return parse_many(limit)


class ProxyLimitExceeded(TooManyRequests):
    """The proxy limit is spent; Retry-After says when its window starts over."""


def _count_proxy_calls(amount: int) -> None:
    """Count `amount` calls against the caller's proxy budget (BACKEND_RATELIMIT_PROXY); 429 when spent.

    Counted with the limiter's own strategy and storage (`limits`, as Flask-Limiter counts every
    other limit, shared with other instances through the same storage), but straight from the
    route: the relay is this backend's hottest path, and Flask-Limiter's per-request machinery
    (filtering, resolving and exempting limits each time) cost about a tenth of a relayed request
    (bench/README.md)."""
    config = current_app.config
    if not config["RATELIMIT_ENABLED"]:
        return
    strategy = limiter.limiter
    key = current_user_or_address()
    items = _parsed(config["RATELIMIT_PROXY"])
    # Tested before anything is counted: a call refused here costs nothing, so one large fan-out
    # that does not fit cannot spend the rest of the window's budget.
    for item in items:
        if not strategy.test(item, "proxy", key, cost=amount):
            _refuse(strategy, item, key)
    for item in items:
        if not strategy.hit(item, "proxy", key, cost=amount):
            _refuse(strategy, item, key)


def _refuse(strategy, item: RateLimitItem, key: str) -> NoReturn:
    reset_at, _remaining = strategy.get_window_stats(item, "proxy", key)
    raise ProxyLimitExceeded(retry_after=max(1, math.ceil(reset_at - time.time())))


def proxy_per_user_times(cost: Callable[[], int]):
    """The proxy limit, counted `cost()` times for one request: a fan-out counts once for each
    login it calls (the same budget as `proxy_per_user`)."""

    def decorate(view):
        @functools.wraps(view)
        def limited(*args, **kwargs):
            _count_proxy_calls(max(1, cost()))
            return view(*args, **kwargs)

        return limited

    return decorate


proxy_per_user = proxy_per_user_times(lambda: 1)


def init_app(app: Flask) -> None:
    limiter.init_app(app)
    skip_app_wide_pass_without_app_wide_limits(app)
    if limiter.enabled:  # (a disabled limiter has set up no storage)
        sweep_in_one_thread(limiter.storage)
