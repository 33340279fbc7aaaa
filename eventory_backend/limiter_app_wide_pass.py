"""A workaround: Flask-Limiter's app-wide `before_request` pass is taken out while it has nothing
to check.

Why: Flask-Limiter checks default, application and meta limits in a `before_request` pass on
every request, and each decorated limit in its route's decorator. Every limit of this backend is
a route's own (limits.py; none is set on a whole blueprint), so that pass only costs time
(bench/README.md has the figure). With default, application or meta limits configured
(RATELIMIT_DEFAULT, RATELIMIT_APPLICATION, RATELIMIT_META), the pass stays.

It removes the private `Limiter._check_request_limit` from the app's `before_request_funcs`;
checked against Flask-Limiter 4.1. tests/test_limits.py fails if that method stops being what
the limiter registers (the pass would stay, costing time but nothing else).
"""

from __future__ import annotations

from flask import Flask

from .extensions import limiter

LIMIT_SETTINGS = ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION", "RATELIMIT_META")


def skip_app_wide_pass_without_app_wide_limits(app: Flask) -> bool:
    """Take the pass out unless app-wide limits exist; whether it was taken out."""
    configured = any(app.config.get(name) for name in LIMIT_SETTINGS)
    with app.app_context():
        manager = limiter.limit_manager  # the process's limiter: what an earlier app set counts too
        if configured or manager.default_limits or manager.application_limits:
            return False
    checks = app.before_request_funcs.get(None, [])
    if limiter._check_request_limit not in checks:
        return False
    checks.remove(limiter._check_request_limit)
    return True
