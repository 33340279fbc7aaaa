"""The Eventory multisite backend: accounts, stored Eventory logins, and the Eventory proxy."""

from __future__ import annotations

import os
from typing import Any

import flask_migrate
from flask import Flask

from config import Config, from_environ

from . import account, audit, auth, errors, logins, observability, proxy, ratelimit, settings
from .auth import guard
from .auth.cli import users
from .extensions import api, bcrypt, cors, db, migrate
from .logins import crypto
from .logins.cli import credentials
from .observability import health, metrics
from .proxy import broker, checks, logos, shared_reads, upstream
from .web import converters
from .web.api import document_security, serve_swagger_ui_files
from .web.middleware import NoCookieSessions, Request, TrustedProxies, security_headers

CORS_ALLOW_HEADERS = ["Authorization", "Content-Type", "X-Eventory-Login", "X-Eventory-Authorization", "X-Request-ID"]
CORS_EXPOSE_HEADERS = ["Retry-After", "X-Request-ID", "Content-Disposition", "Location", "Age", "X-Eventory-Stale"]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application: defaults, then BACKEND_* variables, then `config` (tests)."""
    overrides = dict(config or {})
    instance_path = overrides.pop("INSTANCE_PATH", None) or os.environ.get("BACKEND_INSTANCE_PATH") or None
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)

    # Configuration
    app.config.from_object(Config)
    app.config.update(from_environ())
    app.config.update(overrides)
    settings.derive(app)

    # Extensions
    for extension in (db, bcrypt):
        extension.init_app(app)
    ratelimit.init_app(app)
    migrate.init_app(app, db)
    _init_cors(app)
    api.init_app(app)
    converters.init_app(app, api)
    document_security(api)

    # Errors (after api.init_app: this handler replaces flask-smorest's), then the bearer guard
    errors.init_app(app)
    guard.init_app(app)

    # Services, each given what it reports to (metrics come first)
    observability.init_app(app)
    for service in (crypto, upstream, broker, shared_reads, logos, checks):
        service.init_app(app)

    # Blueprints
    blueprints = [health.blp, auth.blp, logins.blp, logins.shares_blp, proxy.blp, audit.blp]
    if metrics.metrics_of(app) is not None:
        blueprints.append(metrics.blp)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    serve_swagger_ui_files(app)
    app.register_blueprint(account.blp)  # a page for people, not part of the API document

    # Command line
    for group in (users, credentials):
        app.cli.add_command(group)

    # Middleware
    app.request_class = Request
    app.session_interface = NoCookieSessions()
    app.after_request(security_headers)
    app.wsgi_app = TrustedProxies(app.wsgi_app, app.config["TRUSTED_PROXIES"])  # type: ignore[method-assign]

    if app.config["AUTO_MIGRATE"]:
        with app.app_context():
            # An empty or older database is brought up to date on start: no extra step.
            flask_migrate.upgrade(directory=migrate.directory)
    return app


def _init_cors(app: Flask) -> None:
    origins = app.config["CORS_ORIGINS"]
    wildcard = "*" in origins
    cors.init_app(
        app,
        origins="*" if wildcard else origins,
        send_wildcard=wildcard,
        supports_credentials=False,
        allow_headers=CORS_ALLOW_HEADERS,
        expose_headers=CORS_EXPOSE_HEADERS,
        max_age=600,
    )
