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
Checked against flask-jwt-extended 4.7 and PyJWT 2.15: tests/test_library_workarounds.py fails if
bearer tokens stop being decoded through either, tests/test_tokens.py holds the cache's bounds
and expiry.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import flask_jwt_extended.view_decorators as view_decorators
from flask import current_app, has_app_context
from flask_jwt_extended import JWTManager
from flask_jwt_extended.config import config
from flask_jwt_extended.utils import get_unverified_jwt_headers

EXTENSION_KEY = "eventory_verified_tokens"


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
        if isinstance(leeway, timedelta):
            leeway = leeway.total_seconds()
        # PyJWT's own rule: expired once int(exp) <= now - leeway.
        if int(found[0]["exp"]) <= time.time() - leeway:
            self._verified.pop(token, None)
            return None
        return found

    def get(self, token: str, leeway: float | timedelta = 0) -> dict[str, Any] | None:
        found = self._live(token, leeway)
        return dict(found[0]) if found else None  # callers may add to their copy; the kept one stays

    def header(self, token: str, leeway: float | timedelta = 0) -> dict[str, Any] | None:
        found = self._live(token, leeway)
        return dict(found[1]) if found else None

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


class CachingJWTManager(JWTManager):
    """JWTManager whose decoding remembers verified tokens (see the module's docstring)."""

    def init_app(self, app, add_context_processor: bool = False) -> None:
        super().init_app(app, add_context_processor=add_context_processor)
        app.extensions[EXTENSION_KEY] = VerifiedTokens()
        view_decorators.get_unverified_jwt_headers = _remembered_headers

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
