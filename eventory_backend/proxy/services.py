"""The relay and the server-side session: which Eventory credentials a call uses, and sending it.
No database connection is held while Eventory is being waited for: credentials are read first,
then the session is closed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from werkzeug.exceptions import Forbidden, HTTPException

from ..audit import services as audit
from ..auth.guard import carries_backend_token, current_account, verify
from ..extensions import db
from ..logins import services as logins
from ..web.converters import parse_id
from .broker import Credentials, TokenCache, token_cache
from .errors import EventoryUnavailable
from .shared_reads import shared_reads
from .upstream import Answer, EventoryRequest, Upstream, upstream

READS = frozenset({"GET", "HEAD"})
READ_ONLY = "This Eventory login is read-only: the broker sends only GET and HEAD with it."


@dataclass(frozen=True)
class EventoryAuth:
    """How a relayed call signs in to Eventory: with a stored login's `credentials` (brokered),
    with an `authorization` header forwarded as it is, or with nothing."""

    credentials: Credentials | None = None
    authorization: str | None = None


def eventory_auth(
    method: str,
    path: str,
    *,
    login_header: str | None,
    client_token: str | None,
    authorization: str | None,
    public: bool,
) -> EventoryAuth:
    """The relay's choice of Eventory credentials, made before anything is sent:

    - `X-Eventory-Login: <id>`: the caller's stored login, or one shared with them (brokered;
      only GET and HEAD when it is read-only: 403 otherwise, recorded in the audit, where the
      same refusal again within a minute adds to one event's count);
    - `X-Eventory-Authorization`: the Eventory token the caller holds, forwarded;
    - neither, on a public relay (BACKEND_PROXY_PUBLIC): the client's own `Authorization`,
      unless it is a token this backend signed;
    - neither, otherwise: nothing.

    All but the public case need this backend's bearer token (401 without a valid one).
    """
    if public and login_header is None and client_token is None:
        forwarded = authorization if authorization is not None and not carries_backend_token(authorization) else None
        return EventoryAuth(authorization=forwarded)
    account = verify().account
    if login_header is not None:
        login_id = parse_id(login_header.strip())
        if login_id is None:
            raise logins.LoginNotFound()
        stored = logins.stored_credentials(account.id, login_id)
        release_database()
        if stored.read_only and method not in READS:
            audit.record_refusal(
                account, "relay", login_id=login_id, owner_id=stored.owner_id, method=method, path=path, status=403
            )
            raise Forbidden(READ_ONLY)
        return EventoryAuth(credentials=_credentials(stored))
    return EventoryAuth(authorization=client_token)


def credentials_for(user_id: int, login_id: int) -> Credentials:
    """The login `user_id` may broker with (their own or shared with them); 404 for any other."""
    return _credentials(logins.stored_credentials(user_id, login_id))


def _credentials(stored: logins.StoredCredentials) -> Credentials:
    """What the broker signs in with (the password decrypted only if a sign-in needs it)."""
    return Credentials(
        stored.login_id, stored.owner_id, stored.username, stored.sealed_password, logins.password_cipher()
    )


def release_database() -> None:
    """Give the connection back to the pool before waiting on Eventory (a request that never
    opened a session, such as a relay with a client-held token, has nothing to give back)."""
    if db.session.registry.has():
        db.session.close()


def relay(request: EventoryRequest, auth: EventoryAuth) -> Answer:
    """Send `request` to Eventory; brokered when `auth` has credentials (one retry after a 401),
    a brokered GET shared with identical ones in flight (see shared_reads.py), a brokered write
    (not GET or HEAD) recorded in the audit with how it ended."""
    up = upstream()
    credentials = auth.credentials
    if credentials is None:
        return Answer.streamed(up.send(request, authorization=auth.authorization))
    cache = token_cache()

    def send() -> requests.Response:
        return brokered_send(up, cache, credentials, request)

    method, body = request.method, request.body
    if method == "GET" and (body is None or body.data is None):
        return shared_reads().get(send, credentials, request)
    if method in READS:
        return Answer.streamed(send())
    status = 500
    try:
        answer = Answer.streamed(send())
        status = answer.status
        return answer
    except HTTPException as error:
        status = error.code or status
        raise
    finally:
        audit.record_now(
            current_account(),
            "relay",
            login_id=credentials.login_id,
            owner_id=credentials.owner_id,
            method=method,
            path=request.path,
            status=status,
        )


def brokered_send(
    up: Upstream, cache: TokenCache, credentials: Credentials, request: EventoryRequest
) -> requests.Response:
    """Send `request` with the login's Eventory token; after a 401, sign in once more and send it
    again if its body allows."""
    token = cache.token(credentials, up)
    response = up.send(request, authorization=f"Bearer {token}")
    if response.status_code == 401:
        body = request.body
        if body is None or body.replayable:
            response.close()
            response = up.send(request, authorization=f"Bearer {cache.token(credentials, up, stale=token)}")
        else:
            # A streamed body is gone once sent: this call answers Eventory's 401, the next one signs in.
            cache.drop(credentials, token)
    return response


def open_session(login_id: int) -> dict[str, Any]:
    """Sign in to Eventory with a stored login (the caller's own, or shared with them, but never
    a read-only one: a token in the browser would bypass the rule); the token and who it belongs
    to. Every session issued, or refused as read-only, is recorded in the audit."""
    account = current_account()
    stored = logins.stored_credentials(account.id, login_id)
    release_database()
    if stored.read_only:
        audit.record_refusal(account, "session", login_id=login_id, owner_id=stored.owner_id, status=403)
        raise Forbidden("This Eventory login is read-only: no Eventory session is handed out for it.")
    credentials = _credentials(stored)
    answer = _signed_in_session(credentials)
    audit.record_now(account, "session", login_id=login_id, owner_id=stored.owner_id, status=200)
    return answer


def _signed_in_session(credentials: Credentials) -> dict[str, Any]:
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
        logins.set_organisation(credentials.owner_id, credentials.login_id, organisation[:255])
    return {
        "access_token": token,
        "token_type": "bearer",
        "organisation": organisation if isinstance(organisation, str) else None,
        "first_name": info.get("firstName") if isinstance(info.get("firstName"), str) else None,
        "last_name": info.get("lastName") if isinstance(info.get("lastName"), str) else None,
    }


def _user_info(up: Upstream, token: str) -> dict[str, Any] | None:
    """Eventory's user-info for the token; None when the token is refused."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    response = up.send(EventoryRequest("GET", "user-info", headers=headers), stream=False)
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
