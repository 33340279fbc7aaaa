"""Rate limits: every route's limit, and who it counts against. Each is the `limit` decorator
(limiter.py) with a setting read per request; a limit keyed by the user goes below its route's
guard (`login_required`, or `identified` on the relay), so the token is verified once, first."""

from __future__ import annotations

from collections.abc import Callable

from .keys import client_address, client_network, current_user_or_address, login_username
from .limiter import RateLimited, init_app, limit

__all__ = [
    "RateLimited",
    "audit_per_user",
    "client_address",
    "init_app",
    "login_per_address",
    "login_per_username",
    "logins_write_per_user",
    "password_per_user",
    "proxy_per_user",
    "proxy_per_user_times",
    "register_per_address",
]


def failed_login(status: int) -> bool:
    """Only wrong passwords count against a username: its owner is never locked out by others'
    guesses while the right password still works within the limit."""
    return status == 401


login_per_address = limit("RATELIMIT_LOGIN", client_network, "login-address")
login_per_username = limit("RATELIMIT_LOGIN", login_username, "login-username", counted_when=failed_login)
register_per_address = limit("RATELIMIT_REGISTER", client_network, "register")
password_per_user = limit("RATELIMIT_PASSWORD", current_user_or_address, "password")
# One budget for every write to /logins and /shares (save, change, delete, share, answer), per user.
logins_write_per_user = limit("RATELIMIT_LOGINS_WRITE", current_user_or_address, "logins-write")
audit_per_user = limit("RATELIMIT_AUDIT", current_user_or_address, "audit")


def proxy_per_user_times(cost: Callable[[], int]):
    """The proxy limit (BACKEND_RATELIMIT_PROXY), counted `cost()` times for one request: a
    fan-out counts once for each login it calls (the same budget as `proxy_per_user`)."""
    return limit("RATELIMIT_PROXY", current_user_or_address, "proxy", cost=cost)


proxy_per_user = limit("RATELIMIT_PROXY", current_user_or_address, "proxy")
