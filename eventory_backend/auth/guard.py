"""The bearer-token guard: what protected views are wrapped in, the revocation check every
authenticated request makes, and the account it hands to `current_user`.

The check and the user lookup are flask-jwt-extended loaders registered by `init_app`; the
revocation check reads the account row and leaves it in `g.token_account`, where the user
lookup of the same request takes it (one query per request, both ends in this file).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from functools import wraps
from urllib.parse import unquote

from flask import Flask, current_app, g
from flask_jwt_extended import decode_token, get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from sqlalchemy import bindparam, select

from ..database.driver_queries import DriverQuery
from ..extensions import db, jwt
from ..web.api import Blueprint
from .models import RevokedToken, TokenFamily, User

SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"OAuth2PasswordBearer": []}]


@dataclass(frozen=True)
class Account:
    """Who a verified token belongs to, read by the revocation check. Views that show or change
    the account load the `User` row themselves (`services.get_account`)."""

    id: int
    username: str
    token_generation: int


def login_required(view):
    """What flask-jwt-extended's `jwt_required()` does (the token verified, then the view run as
    Flask runs views), verified through `verified_claims`, documented as the bearer security
    requirement."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        verified_claims()
        return current_app.ensure_sync(view)(*args, **kwargs)

    return Blueprint.doc(security=SECURITY)(wrapper)


def identified(view):
    """Verify the request's bearer token before the view (and its rate limit) when it carries a
    valid one; a request without one, or with one this backend did not sign, goes on anonymous
    (the public relay). The view asks `verified_claims()` when it needs the token after all."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        verified_claims(optional=True)
        return view(*args, **kwargs)

    return wrapper


def verified_claims(optional: bool = False) -> dict:
    """This request's verified token claims, verifying (signature, expiry, revocation, user) only
    once per request. Empty when `optional` and there is no valid token."""
    try:
        claims = get_jwt()
    except RuntimeError:  # not verified yet in this request
        claims = {}
    if claims:
        return claims
    if jwt.verify_remembered():  # a token verified before, the plain way: see web/jwt_decode_cache.py
        return get_jwt()
    if optional:
        try:
            verify_jwt_in_request(optional=True)
        except (JWTExtendedException, PyJWTError):
            return {}  # the view answers a bad token with its own 401
        return get_jwt()
    verify_jwt_in_request()
    return get_jwt()


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


def _is_revoked(_header: dict, payload: dict) -> bool:
    """One query on every authenticated request, on a connection held only for that query (a
    relayed request then waits on Eventory without one)."""
    try:
        user_id = int(payload["sub"])
    except (KeyError, TypeError, ValueError):
        return True
    values = {"user_id": user_id, "family": payload.get("fam"), "jti": payload.get("jti")}
    row = REVOCATION_CHECK.first(db.engine, values)
    if row is None:
        return False  # the user lookup answers "the account no longer exists"
    account_id, username, generation, family_is_revoked, jti_is_revoked = row
    g.token_account = Account(account_id, username, generation)  # _load_user takes it
    if payload.get("gen") != generation or jti_is_revoked:
        return True
    # A token with a family whose row is gone (expired, or its user deleted) is over too.
    return payload.get("fam") is not None and (family_is_revoked is None or bool(family_is_revoked))


def _load_user(_header: dict, payload: dict) -> Account | None:
    """`current_user`: the account the revocation check of this same request read (None when the
    account no longer exists, which answers 401)."""
    account = g.get("token_account")
    if account is not None and str(account.id) == str(payload.get("sub")):
        return account
    return None


def init_app(app: Flask) -> None:
    jwt.token_in_blocklist_loader(_is_revoked)
    jwt.user_lookup_loader(_load_user)
