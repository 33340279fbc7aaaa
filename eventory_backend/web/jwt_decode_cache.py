"""A workaround: flask-jwt-extended's manager, remembering the tokens it has already verified.

Why: flask-jwt-extended parses a bearer token three times on every request, and PyJWT checks
each base64 character of every segment in Python (bench/README.md has what that costs a relayed
request). A token string whose signature verified once verifies again, so its claims and its
header are kept (per app, bounded) and handed back while the token has not expired; an expired
or unknown token takes the full check. Only the signature and claims check and the header's
parsing are skipped: revocation (the blocklist loader) and the user lookup still run on every
request.

It overrides flask-jwt-extended's private `JWTManager._decode_jwt_from_config`, and replaces the
`get_unverified_jwt_headers` that `flask_jwt_extended.view_decorators` calls once a token has
verified (a remembered token's header comes from the cache; any other goes to the original).
A request whose bearer token is remembered, sent the plain way (`Authorization: Bearer <token>`),
is verified by `verify_remembered` without flask-jwt-extended's per-request machinery (about 25
lookups of the app, the request and `g` through Flask's proxies, its settings read anew each
time, the header split by a regular expression): the same checks in the same order (an access
token, not revoked by the blocklist loader, passing the claims-verification loader, its user
found by the user lookup) and the same four values left in `g` where `verify_jwt_in_request`
leaves them, so `get_jwt`, `get_jwt_header`, `current_user` and the rest read them as always.
Anything else (no token, another scheme or location, a list of credentials, a token not yet
remembered, a refresh token, a revoked one, a missing user, an exempt method) goes to
`verify_jwt_in_request`, whose errors answer it. bench/README.md has what it saves.

Checked against flask-jwt-extended 4.7 and PyJWT 2.15: tests/test_library_workarounds.py fails if
bearer tokens stop being decoded through either, or if what `verify_remembered` leaves differs
from what `verify_jwt_in_request` leaves for the same request; tests/test_tokens.py holds the
cache's bounds and expiry.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import flask_jwt_extended.view_decorators as view_decorators
from flask import current_app, g, has_app_context, request
from flask_jwt_extended import JWTManager
from flask_jwt_extended.config import config
from flask_jwt_extended.utils import get_unverified_jwt_headers

EXTENSION_KEY = "eventory_verified_tokens"
FAST_PATH_KEY = "eventory_verified_tokens_leeway"  # None: this app's JWT settings are not the plain ones


def _seconds(leeway: float | timedelta) -> float:
    """`JWT_DECODE_LEEWAY` in seconds: flask-jwt-extended takes a number or a timedelta."""
    return leeway.total_seconds() if isinstance(leeway, timedelta) else float(leeway)


class VerifiedTokens:
    """Verified claims and headers by token string; starts over when full (a bound, not an LRU)."""

    def __init__(self, max_entries: int = 4096):
        self.max_entries = max_entries
        self._verified: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _live(self, token: str, leeway: float | timedelta) -> tuple[dict[str, Any], dict[str, Any]] | None:
        found = self._verified.get(token)
        if found is None:
            return None
        # PyJWT's own rule: expired once int(exp) <= now - leeway.
        if int(found[0]["exp"]) <= time.time() - _seconds(leeway):
            self._verified.pop(token, None)
            return None
        return found

    def get(self, token: str, leeway: float | timedelta = 0) -> dict[str, Any] | None:
        found = self._live(token, leeway)
        return dict(found[0]) if found else None  # callers may add to their copy; the kept one stays

    def header(self, token: str, leeway: float | timedelta = 0) -> dict[str, Any] | None:
        found = self._live(token, leeway)
        return dict(found[1]) if found else None

    def claims_and_header(self, token: str, leeway: float) -> tuple[dict[str, Any], dict[str, Any]] | None:
        found = self._live(token, leeway)
        return (dict(found[0]), dict(found[1])) if found else None

    def put(self, token: str, claims: dict[str, Any], header: dict[str, Any]) -> None:
        if not isinstance(claims.get("exp"), (int, float)):
            return  # a token without an expiry is never remembered
        with self._lock:
            if len(self._verified) >= self.max_entries:
                self._verified.clear()
            self._verified[token] = (dict(claims), dict(header))


def _remembered_headers(encoded_token: str) -> dict:
    """flask-jwt-extended's header lookup after a token verified: a remembered token's header."""
    cache = current_app.extensions.get(EXTENSION_KEY) if has_app_context() else None
    header = cache.header(encoded_token, config.leeway) if cache is not None else None
    return header if header is not None else get_unverified_jwt_headers(encoded_token)


# The settings under which a plain `Authorization: Bearer <token>` is where and how
# flask-jwt-extended looks for a token; with any other, every request takes its own path.
PLAIN_SETTINGS = {
    "JWT_TOKEN_LOCATION": ["headers"],
    "JWT_HEADER_NAME": "Authorization",
    "JWT_HEADER_TYPE": "Bearer",
}
EXEMPT_METHODS = {"OPTIONS"}  # flask-jwt-extended's `config.exempt_methods`, a fixed set (no setting)


class CachingJWTManager(JWTManager):
    """JWTManager whose decoding remembers verified tokens (see the module's docstring)."""

    def init_app(self, app, add_context_processor: bool = False) -> None:
        super().init_app(app, add_context_processor=add_context_processor)
        app.extensions[EXTENSION_KEY] = VerifiedTokens()
        view_decorators.get_unverified_jwt_headers = _remembered_headers
        plain = all(app.config.get(name) == value for name, value in PLAIN_SETTINGS.items())
        app.extensions[FAST_PATH_KEY] = _seconds(app.config.get("JWT_DECODE_LEEWAY", 0)) if plain else None

    def verify_remembered(self) -> bool:
        """Verify this request's token as `verify_jwt_in_request()` would when it is a remembered
        one sent the plain way; whether it did (False: nothing was changed, ask the library)."""
        app = current_app._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
        leeway = app.extensions.get(FAST_PATH_KEY)
        current = request._get_current_object()  # type: ignore[attr-defined]
        if leeway is None or current.method in EXEMPT_METHODS:
            return False
        value = current.headers.get("Authorization")
        if value is None or "," in value:
            return False
        parts = value.split()
        if len(parts) != 2 or parts[0] != "Bearer":
            return False
        found = app.extensions[EXTENSION_KEY].claims_and_header(parts[1], leeway)
        if found is None:
            return False
        claims, header = found
        if claims.get("type") == "refresh":
            return False
        if self._token_in_blocklist_callback(header, claims):
            return False
        if not self._token_verification_callback(header, claims):
            return False
        user = None
        if self._user_lookup_callback is not None:
            account = self._user_lookup_callback(header, claims)
            if account is None:
                return False
            user = {"loaded_user": account}
        # Where verify_jwt_in_request leaves a verified token, in its order.
        context = g._get_current_object()
        context._jwt_extended_jwt_user = user
        context._jwt_extended_jwt_header = header
        context._jwt_extended_jwt = claims
        context._jwt_extended_jwt_location = "headers"
        return True

    def _decode_jwt_from_config(self, encoded_token: str, csrf_value=None, allow_expired: bool = False) -> dict:
        cache = current_app.extensions.get(EXTENSION_KEY) if has_app_context() else None
        if cache is None or csrf_value is not None or allow_expired:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        claims = cache.get(encoded_token, config.leeway)
        if claims is None:
            claims = super()._decode_jwt_from_config(encoded_token)
            # Its header is parsed here, once per token (the signature has just verified).
            cache.put(encoded_token, claims, get_unverified_jwt_headers(encoded_token))
        return claims
