"""The bearer-token guard every protected view uses, and the user it loads."""

from __future__ import annotations

from flask import g
from flask_jwt_extended import decode_token, get_jwt, jwt_required, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError

from .api import Blueprint
from .extensions import jwt

SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"OAuth2PasswordBearer": []}]


@jwt.user_lookup_loader
def _load_user(_header: dict, payload: dict):
    """`current_user`: the account the revocation check of this same request read (None when the
    account no longer exists, which answers 401)."""
    account = g.get("token_account")
    if account is not None and str(account.id) == str(payload.get("sub")):
        return account
    return None


def verified_claims(optional: bool = False) -> dict:
    """This request's verified token claims, verifying (signature, expiry, revocation, user) only
    once per request: the rate limiter's key and the view both ask. Empty when `optional` and
    there is no valid token."""
    try:
        claims = get_jwt()
    except RuntimeError:  # not verified yet in this request
        claims = {}
    if claims:
        return claims
    if optional:
        try:
            verify_jwt_in_request(optional=True)
        except (JWTExtendedException, PyJWTError):
            return {}  # the view answers a bad token with its own 401
        return get_jwt()
    verify_jwt_in_request()
    return get_jwt()


def login_required(view):
    """jwt_required(), documented as the bearer security requirement."""
    return Blueprint.doc(security=SECURITY)(jwt_required()(view))


def is_backend_token(authorization: str) -> bool:
    """Whether an Authorization header carries a token this backend signed (expired or revoked
    ones too): the public relay forwards the client's Eventory token, never one of ours."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    try:
        decode_token(token.strip(), allow_expired=True)
    except (JWTExtendedException, PyJWTError):
        return False
    return True
