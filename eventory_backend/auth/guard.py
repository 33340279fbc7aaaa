"""The bearer-token guard: the one place a request's token is checked, and where views, rate
limits and the access log learn whose request it is.

flask-jwt-extended signs and decodes the tokens (`create_access_token`, `decode_token`: its
public functions); everything else is here. Every guarded request runs, in this order:

1. the token taken from `Authorization: Bearer <token>` (a list of credentials may hold one);
2. its signature and claims checked by `decode_token`, or found among the tokens this app
   already verified (`VerifiedTokens`: bounded, each kept no longer than its `exp`);
3. its type (an access token, or a refresh token on `POST /auth/refresh`);
4. revocation and the account, in one query (`REVOCATION_CHECK`), on every request.

What passes is kept in `g` for the rest of the request: `current_account()` and
`token_claims()` for views, and `g.account_id` (an int, or absent) for the layers below auth
(rate-limit keys, the access log), which never verify anything themselves.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import unquote

from flask import Flask, current_app, g, request
from flask_jwt_extended import JWTManager, decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import ExpiredSignatureError, PyJWTError
from sqlalchemy import bindparam, select
from werkzeug.exceptions import Unauthorized

from ..database.driver_queries import DriverQuery
from ..extensions import db
from ..web.api import Blueprint
from .models import RevokedToken, TokenFamily, User

SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"OAuth2PasswordBearer": []}]

# flask-jwt-extended: signs and decodes tokens with the app's JWT_* settings (settings.py).
manager = JWTManager()

MISSING = "Log in first: this route needs an Authorization: Bearer token."
INVALID = "The bearer token is not valid; log in again."
EXPIRED = "Your session has expired; log in again."
REVOKED = "This token has been logged out; log in again."
NO_ACCOUNT = "The account for this token no longer exists; log in again."

VERIFIED_TOKENS = "eventory_verified_tokens"  # the app's VerifiedTokens, in app.extensions


@dataclass(frozen=True)
class Account:
    """Who a verified token belongs to, read by the revocation check. Views that show or change
    the account load the `User` row themselves (`services.get_account`)."""

    id: int
    username: str
    token_generation: int


@dataclass(frozen=True)
class Verified:
    claims: dict[str, Any]
    account: Account


def login_required(view):
    """Run the view only for a valid access token (401 otherwise); documented as the bearer
    security requirement."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        verify()
        return current_app.ensure_sync(view)(*args, **kwargs)

    return Blueprint.doc(security=SECURITY)(wrapper)


def refresh_token_required(view):
    """Run the view only for a valid refresh token (401 otherwise)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        verify(refresh=True)
        return current_app.ensure_sync(view)(*args, **kwargs)

    return Blueprint.doc(security=SECURITY)(wrapper)


def identified(view):
    """Verify the request's bearer token before the view (and its rate limit) when it carries a
    valid one; a request without one, or with one this backend did not sign, goes on anonymous
    (the public relay). The view calls `verify()` when it needs the token after all."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        try:
            verify()
        except Unauthorized:
            pass  # the view answers a bad token with its own 401 where it needs one
        return view(*args, **kwargs)

    return wrapper


def current_account() -> Account:
    """The account whose token this request's guard verified."""
    return g.verified.account


def token_claims() -> dict[str, Any]:
    """The claims of the token this request's guard verified."""
    return g.verified.claims


def verify(refresh: bool = False) -> Verified:
    """Check this request's token (once per request) and keep what passed; 401 with the reason
    when it does not."""
    done: Verified | None = g.get("verified")
    if done is not None and (done.claims.get("type") == "refresh") == refresh:
        return done
    token = _bearer_token(request.headers.get("Authorization", ""))
    if token is None:
        raise Unauthorized(MISSING)
    claims = _claims(token)
    if (claims.get("type") == "refresh") != refresh:
        raise Unauthorized(INVALID)
    verified = Verified(claims, _account(claims))
    g.verified = verified
    g.account_id = verified.account.id
    return verified


def _bearer_token(value: str) -> str | None:
    """The token of the one `Bearer` credential in an Authorization header; None when there is
    none (or more than one), 401 when it is malformed. flask-jwt-extended's reading of it."""
    parts = value.split()
    if len(parts) == 2 and parts[0] == "Bearer" and "," not in value:
        return parts[1]  # the usual header, read without a regular expression
    value = value.strip().strip(",")
    bearers = [field for field in re.split(r",\s*", value) if field.split()[:1] == ["Bearer"]]
    if len(bearers) != 1:
        return None
    parts = bearers[0].split()
    if len(parts) != 2:
        raise Unauthorized(INVALID)
    return parts[1]


def _claims(token: str) -> dict[str, Any]:
    """The token's claims: remembered while it lives, else checked by flask-jwt-extended."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    remembered: VerifiedTokens = app.extensions[VERIFIED_TOKENS]
    claims = remembered.get(token)
    if claims is not None:
        return claims
    try:
        claims = decode_token(token)
    except ExpiredSignatureError:
        raise Unauthorized(EXPIRED) from None
    except (JWTExtendedException, PyJWTError):
        raise Unauthorized(INVALID) from None
    remembered.put(token, claims)
    return dict(claims)


class VerifiedTokens:
    """The claims of tokens whose signature verified, by token string, each until its `exp`
    (less the app's JWT_DECODE_LEEWAY, PyJWT's own rule); starts over when full (a bound)."""

    def __init__(self, leeway: float | timedelta = 0, max_entries: int = 4096):
        self.leeway = leeway.total_seconds() if isinstance(leeway, timedelta) else float(leeway)
        self.max_entries = max_entries
        self._verified: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> dict[str, Any] | None:
        found = self._verified.get(token)
        if found is None:
            return None
        if int(found["exp"]) <= time.time() - self.leeway:
            self._verified.pop(token, None)
            return None
        return dict(found)  # callers may add to their copy; the kept one stays

    def put(self, token: str, claims: dict[str, Any]) -> None:
        if not isinstance(claims.get("exp"), (int, float)):
            return  # a token without an expiry is never remembered
        with self._lock:
            if len(self._verified) >= self.max_entries:
                self._verified.clear()
            self._verified[token] = dict(claims)


# A JWT begins with its header, a JSON object, whose base64url always begins "eyJ" ('{"').
_JWT_FROM_HERE = re.compile(r"eyJ[A-Za-z0-9_-]*=*\.[A-Za-z0-9_-]+=*\.[A-Za-z0-9_-]*=*")
_BASE64_WORD = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")


def carries_backend_token(authorization: str) -> bool:
    """Whether a token this backend signed (expired or revoked ones too) stands anywhere in an
    Authorization header, however it is written: after `Bearer`, a tab, `JWT`, `Token token=`, a
    `=` or `_`, bare, inside a list, percent-encoded, or inside base64 (`Basic`). The public relay
    forwards the client's own Eventory token, never one of ours."""
    return any(_has_our_token(text) for text in _readings(authorization))


def _readings(header: str) -> list[str]:
    """The header as sent, percent-decoded, and with each base64 word decoded."""
    readings = [header, unquote(header)]
    for word in _BASE64_WORD.findall(header):
        try:
            readings.append(base64.b64decode(word + "=" * (-len(word) % 4), altchars=b"-_").decode("latin-1"))
        except ValueError:
            continue
    return readings


def _has_our_token(text: str) -> bool:
    for start in (match.start() for match in re.finditer("eyJ", text)):
        found = _JWT_FROM_HERE.match(text, start)
        if found is None:
            continue
        try:
            decode_token(found.group().replace("=", ""), allow_expired=True)
        except (JWTExtendedException, PyJWTError):
            continue
        return True
    return False


# The user, the family's revoked flag and whether the jti is revoked, in one round trip (sent
# straight to the driver: see database/driver_queries.py).
REVOCATION_CHECK = DriverQuery(
    select(
        User.id,
        User.username,
        User.token_generation,
        select(TokenFamily.revoked).where(TokenFamily.id == bindparam("family")).scalar_subquery(),
        select(RevokedToken.jti).where(RevokedToken.jti == bindparam("jti")).exists(),
    ).where(User.id == bindparam("user_id"))
)


def _account(claims: dict[str, Any]) -> Account:
    """The token's account, unless the token was revoked: one query on every authenticated
    request, on a connection held only for that query (a relayed request then waits on Eventory
    without one)."""
    try:
        user_id = int(claims["sub"])
    except (KeyError, TypeError, ValueError):
        raise Unauthorized(REVOKED) from None
    values = {"user_id": user_id, "family": claims.get("fam"), "jti": claims.get("jti")}
    row = REVOCATION_CHECK.first(db.engine, values)
    if row is None:
        raise Unauthorized(NO_ACCOUNT)
    account_id, username, generation, family_is_revoked, jti_is_revoked = row
    # A token with a family whose row is gone (expired, or its user deleted) is over too.
    family_over = claims.get("fam") is not None and (family_is_revoked is None or bool(family_is_revoked))
    if claims.get("gen") != generation or jti_is_revoked or family_over:
        raise Unauthorized(REVOKED)
    return Account(account_id, username, generation)


def init_app(app: Flask) -> None:
    manager.init_app(app)
    app.extensions[VERIFIED_TOKENS] = VerifiedTokens(app.config.get("JWT_DECODE_LEEWAY", 0))
