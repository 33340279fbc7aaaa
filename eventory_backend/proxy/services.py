"""The relay, the server-side session and the fan-out. No database connection is held while
Eventory is being waited for: credentials are read first, then the session is closed."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import requests
from flask import current_app
from werkzeug.exceptions import HTTPException, NotFound

from ..extensions import db
from ..logins import services as logins
from .broker import Credentials, TokenCache, token_cache
from .upstream import Body, EventoryUnavailable, Upstream, upstream

log = logging.getLogger("eventory_backend.proxy")

FANOUT_MAX_BODY = 10 * 1024 * 1024


class StoredPasswordUnreadable(HTTPException):
    code = 500
    description = "This login's stored password cannot be decrypted with the server's keys; save the login again."


def credentials_for(owner_id: int, login_id: int) -> Credentials:
    """The owner's login, decrypted; 404 for another user's or a missing id."""
    login = logins.get_login(owner_id, login_id)
    password = logins.readable_password(login)
    if password is None:
        raise StoredPasswordUnreadable()
    return Credentials(login.id, login.username, password)


def release_database() -> None:
    """Give the connection back to the pool before waiting on Eventory (a request that never
    opened a session, such as a relay with a client-held token, has nothing to give back)."""
    if db.session.registry.has():
        db.session.close()


def relay(
    method: str,
    path: str,
    *,
    query: str,
    headers: dict[str, str],
    body: Body,
    credentials: Credentials | None = None,
) -> requests.Response:
    """Send one request to Eventory; brokered when `credentials` are given (one retry after a 401)."""
    up = upstream()
    if credentials is None:
        return up.send(method, path, query=query, headers=headers, body=body)
    return brokered_send(up, token_cache(), credentials, method, path, query=query, headers=headers, body=body)


def brokered_send(
    up: Upstream,
    cache: TokenCache,
    credentials: Credentials,
    method: str,
    path: str,
    *,
    query: str,
    headers: dict[str, str],
    body: Body | None = None,
    timeout: tuple[float, float] | None = None,
) -> requests.Response:
    """Inject the login's Eventory token; after a 401, sign in once more and retry once if the body allows."""

    def send(token: str) -> requests.Response:
        return up.send(
            method,
            path,
            query=query,
            headers={**headers, "Authorization": f"Bearer {token}"},
            body=body,
            timeout=timeout,
        )

    token = cache.token(credentials, up)
    response = send(token)
    if response.status_code == 401:
        if body is None or body.replayable:
            response.close()
            response = send(cache.token(credentials, up, stale=token))
        else:
            # A streamed body is gone once sent: this call answers Eventory's 401, the next one signs in.
            cache.drop(credentials.login_id, token)
    return response


def open_session(owner_id: int, login_id: int) -> dict[str, Any]:
    """Sign in to Eventory with a stored login; the token and who it belongs to."""
    credentials = credentials_for(owner_id, login_id)
    release_database()
    up = upstream()
    cache = token_cache()
    token = cache.token(credentials, up)
    info = _user_info(up, token)
    if info is None:
        token = cache.token(credentials, up, stale=token)
        info = _user_info(up, token)
        if info is None:
            raise EventoryUnavailable("Eventory accepted the login but refused its token; try again shortly.")
    organisation = info.get("organizationName")
    if isinstance(organisation, str):
        logins.set_organisation(owner_id, login_id, organisation[:255])
    return {
        "access_token": token,
        "token_type": "bearer",
        "organisation": organisation if isinstance(organisation, str) else None,
        "first_name": info.get("firstName") if isinstance(info.get("firstName"), str) else None,
        "last_name": info.get("lastName") if isinstance(info.get("lastName"), str) else None,
    }


def _user_info(up: Upstream, token: str) -> dict[str, Any] | None:
    """Eventory's user-info for the token; None when the token is refused."""
    response = up.send(
        "GET", "user-info", headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}, stream=False
    )
    if response.status_code == 401:
        return None
    if response.status_code != 200:
        raise EventoryUnavailable(f"Eventory answered {response.status_code} to user-info.")
    try:
        info = response.json()
    except ValueError:
        raise EventoryUnavailable("Eventory's user-info was not JSON.") from None
    if not isinstance(info, dict):
        raise EventoryUnavailable("Eventory's user-info was not an object.")
    return info


@dataclass
class FanOutEntry:
    login_id: int
    label: str
    organisation: str | None
    color: str
    status: int | None = None
    data: Any = None
    error: str | None = None
    elapsed_ms: float = 0.0
    credentials: Credentials | None = field(default=None, repr=False)

    def public(self) -> dict[str, Any]:
        return {
            "login_id": self.login_id,
            "label": self.label,
            "organisation": self.organisation,
            "color": self.color,
            "status": self.status,
            "data": self.data,
            "error": self.error,
            "elapsed_ms": self.elapsed_ms,
        }


def fan_out(
    owner_id: int, path: str, *, query: str, headers: dict[str, str], login_ids: list[int] | None
) -> list[dict]:
    """The brokered GET for each of the owner's logins (or the chosen ones), in parallel."""
    owned = logins.list_logins(owner_id)
    if login_ids is not None:
        known = {login.id for login in owned}
        for login_id in login_ids:
            if login_id not in known:
                raise NotFound(f"No Eventory login with id {login_id}.")
        chosen = set(login_ids)
        owned = [login for login in owned if login.id in chosen]
    entries = []
    for login in owned:
        entry = FanOutEntry(login.id, login.label, login.organisation, login.color)
        password = logins.readable_password(login)
        if password is None:
            entry.error = StoredPasswordUnreadable.description
        else:
            entry.credentials = Credentials(login.id, login.username, password)
        entries.append(entry)
    release_database()

    config = current_app.config
    up, cache = upstream(), token_cache()
    per_login = float(config["FANOUT_TIMEOUT"])
    timeout = (min(up.timeout[0], per_login), per_login)
    runnable = [entry for entry in entries if entry.credentials is not None]
    if runnable:
        pool = ThreadPoolExecutor(
            max_workers=min(config["FANOUT_CONCURRENCY"], len(runnable)), thread_name_prefix="fanout"
        )
        try:
            started = time.monotonic()
            futures = [
                (entry, pool.submit(_fetch_one, up, cache, entry, path, query, headers, timeout)) for entry in runnable
            ]
            deadline = started + per_login * (1 + len(runnable) // max(1, config["FANOUT_CONCURRENCY"]))
            for entry, future in futures:
                try:
                    future.result(timeout=max(0.0, deadline - time.monotonic()))
                except FutureTimeout:
                    entry.error = "Eventory did not answer in time."
                    entry.elapsed_ms = round((time.monotonic() - started) * 1000, 1)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    return [entry.public() for entry in entries]


def _fetch_one(
    up: Upstream, cache: TokenCache, entry: FanOutEntry, path: str, query: str, headers: dict[str, str], timeout
) -> None:
    started = time.monotonic()
    try:
        assert entry.credentials is not None
        response = brokered_send(
            up, cache, entry.credentials, "GET", path, query=query, headers=headers, timeout=timeout
        )
        entry.status = response.status_code
        try:
            raw = _read_limited(response, FANOUT_MAX_BODY)
        finally:
            response.close()
        if raw:
            try:
                entry.data = json.loads(raw)
            except ValueError:
                entry.error = "Eventory's answer was not JSON."
        if entry.error is None and not 200 <= response.status_code < 300:
            entry.error = f"Eventory answered {response.status_code}."
    except HTTPException as error:
        entry.error = error.description
    except Exception as error:  # noqa: BLE001 - one login's failure never fails the others
        log.warning("fan-out login_id=%s failed error=%s", entry.login_id, type(error).__name__)
        entry.error = "Eventory's answer could not be read."
    finally:
        entry.elapsed_ms = round((time.monotonic() - started) * 1000, 1)


def _read_limited(response: requests.Response, limit: int) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ValueError("too large")
        chunks.append(chunk)
    return b"".join(chunks)
