"""Who a rate limit counts against, and the configured limits (read per request, not at import)."""

from __future__ import annotations

from flask import Flask, current_app, request

from .extensions import limiter
from .security import verified_claims


def client_address() -> str:
    """The socket's address, or the client behind a trusted proxy (see forwarded.py)."""
    return request.remote_addr or "unknown"


def login_username() -> str:
    """The username a login attempt names, folded: a spread of addresses against one name counts together."""
    from .auth.services import username_key

    name = request.form.get("username")
    if name is None:
        body = request.get_json(silent=True)
        name = body.get("username") if isinstance(body, dict) else None
    return "username:" + (username_key(name)[:256] if isinstance(name, str) else "-")


def current_user_or_address() -> str:
    """The verified user, or the address for anonymous (public relay) calls."""
    identity = verified_claims(optional=True).get("sub")
    return f"user:{identity}" if identity else f"address:{client_address()}"


def setting(name: str):
    return lambda: current_app.config[name]


login_per_address = limiter.limit(setting("RATELIMIT_LOGIN"), key_func=client_address, scope="login-address")
login_per_username = limiter.limit(setting("RATELIMIT_LOGIN"), key_func=login_username, scope="login-username")
register_per_address = limiter.limit(setting("RATELIMIT_REGISTER"), key_func=client_address, scope="register")
password_per_user = limiter.limit(setting("RATELIMIT_PASSWORD"), key_func=current_user_or_address, scope="password")
proxy_per_user = limiter.shared_limit(setting("RATELIMIT_PROXY"), scope="proxy", key_func=current_user_or_address)


def init_app(app: Flask) -> None:
    """Skip Flask-Limiter's app-wide pass when it has nothing to check.

    Flask-Limiter checks default, application and meta limits in a before_request pass, and
    each decorated limit in its route's decorator. Every limit of this backend is a route's own
    (above; none is set on a whole blueprint), so that pass only cost time (a twentieth of a
    relayed request's CPU). With default, application or meta limits configured
    (RATELIMIT_DEFAULT, RATELIMIT_APPLICATION, RATELIMIT_META), the pass stays.
    """
    configured = any(app.config.get(name) for name in ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION", "RATELIMIT_META"))
    with app.app_context():
        manager = limiter.limit_manager  # the process's limiter: what an earlier app set counts too
        if configured or manager.default_limits or manager.application_limits:
            return
    checks = app.before_request_funcs.get(None, [])
    if limiter._check_request_limit in checks:
        checks.remove(limiter._check_request_limit)
