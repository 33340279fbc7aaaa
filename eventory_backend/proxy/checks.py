"""POST /logins/<id>/check: sign in with a stored login now, to see whether Eventory still takes
it. For those who may change the login (its owner and managers), and at most once a minute per
credentials: in between, the answer is the login's last recorded status. Checking again and
again cannot send a password Eventory rejected over and over (which gets an Eventory account, or
this server's address, locked out)."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app
from werkzeug.exceptions import GatewayTimeout

from ..logins import services as logins
from .broker import token_cache
from .errors import EventoryRejectedLogin, EventoryUnavailable, EventoryUnavailableForSignIn
from .lru import Recent
from .services import credentials_for, release_database
from .upstream import upstream

EVERY = 60.0  # seconds between two sign-ins by /check with the same credentials
KEPT = 10_000  # credentials remembered per process, the oldest forgotten first


class RecentChecks:
    """When /check last signed in with each credentials key, in this process."""

    def __init__(self) -> None:
        self._last: Recent[None] = Recent()

    def claim(self, key: bytes) -> bool:
        """Whether a check with these credentials may sign in now (and if so, from now on the next
        one waits EVERY seconds)."""
        return self._last.claim(key, None, EVERY, KEPT)

    def __len__(self) -> int:
        return len(self._last)


def check_login(user_id: int, login_id: int) -> dict[str, Any]:
    """Sign in with a stored login (the user's own, or one they manage) now, even while a
    rejection is remembered, unless these credentials were checked less than a minute ago; the
    login as the user sees it, with the outcome in its status and `checked_at` (a refusal or an
    outage is the answer, not an error). 403 for a `use` grantee, 404 for a login they cannot see."""
    logins.access(user_id, login_id).require(
        logins.OWNER, logins.MANAGE, refusal="Only the login's owner and its managers may check it."
    )
    credentials = credentials_for(user_id, login_id)
    release_database()
    recent: RecentChecks = current_app.extensions["eventory_checks"]
    if recent.claim(credentials.key):
        try:
            token_cache().check(credentials, upstream())
        except (EventoryRejectedLogin, EventoryUnavailable, EventoryUnavailableForSignIn, GatewayTimeout):
            pass  # recorded in the login's status by the token cache
    return logins.login_view(user_id, login_id)


def init_app(app: Flask) -> None:
    app.extensions["eventory_checks"] = RecentChecks()
