"""The Eventory multisite backend: accounts, stored Eventory logins, and the Eventory proxy."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from typing import Any

import flask_migrate
from flask import Flask, request, send_from_directory
from flask.sessions import SessionInterface
from swagger_ui_bundle import swagger_ui_path

from config import Config, from_environ

from . import errors, limits, observability
from .api import AnyPathConverter, IdConverter
from .extensions import api, bcrypt, cors, db, jwt, limiter, migrate
from .forwarded import TrustedProxies
from .instance import read_or_create

SEED_SECRET_KEY = "change-me-in-production-use-a-long-random-string"  # noqa: S105 - the value we refuse
GENERATE_KEY_HINT = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application: defaults, then BACKEND_* variables, then `config` (tests)."""
    overrides = dict(config or {})
    instance_path = overrides.pop("INSTANCE_PATH", None) or os.environ.get("BACKEND_INSTANCE_PATH") or None
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    app.session_interface = NoCookieSessions()
    app.config.from_object(Config)
    app.config.update(from_environ())
    app.config.update(overrides)
    _derive_settings(app)

    for ext in (db, bcrypt, jwt, limiter):
        ext.init_app(app)
    limits.init_app(app)
    migrate.init_app(app, db)
    origins = app.config["CORS_ORIGINS"]
    wildcard = "*" in origins
    cors.init_app(
        app,
        origins="*" if wildcard else origins,
        send_wildcard=wildcard,
        supports_credentials=False,
        allow_headers=["Authorization", "Content-Type", "X-Eventory-Login", "X-Eventory-Authorization", "X-Request-ID"],
        expose_headers=["Retry-After", "X-Request-ID", "Content-Disposition", "Location"],
        max_age=600,
    )
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["anypath"] = AnyPathConverter
    app.url_map.merge_slashes = False
    api.init_app(app)
    api.register_converter(IdConverter, IdConverter.openapi_schema)
    api.register_converter(AnyPathConverter, AnyPathConverter.openapi_schema)
    _document_security()
    errors.init_app(app)

    from .logins import crypto
    from .proxy import broker, upstream

    for service in (crypto, upstream, broker):
        service.init_app(app)
    observability.init_app(app)

    from . import auth, logins, proxy

    for blp in (auth.blp, logins.blp, proxy.blp):
        api.register_blueprint(blp)
    _serve_swagger_ui_files(app)
    app.after_request(_security_headers)
    from .auth.cli import users
    from .logins.cli import credentials

    for group in (users, credentials):
        app.cli.add_command(group)
    app.wsgi_app = TrustedProxies(app.wsgi_app, app.config["TRUSTED_PROXIES"])  # type: ignore[method-assign]

    if app.config["AUTO_MIGRATE"]:
        with app.app_context():
            # An empty or older database is brought up to date on start: no extra step.
            flask_migrate.upgrade(directory=migrate.directory)
    return app


def _derive_settings(app: Flask) -> None:
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        path = os.path.join(app.instance_path, "eventory_backend.db")
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + path.replace("\\", "/")
    # Bound parameters (hashes, ciphertexts) must never reach an error message or a log.
    engine_options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    engine_options.setdefault("hide_parameters", True)
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A server's connections can drop (restart, idle timeout); a SQLite file's cannot.
        engine_options.setdefault("pool_pre_ping", True)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options

    key = app.config.get("SECRET_KEY")
    if not key:
        key = read_or_create(app.instance_path, "secret_key", lambda: secrets.token_urlsafe(48))
    elif not (app.debug or app.testing):
        if key == SEED_SECRET_KEY:
            raise RuntimeError(f"BACKEND_SECRET_KEY is the example value from the seed; {GENERATE_KEY_HINT}")
        if len(key.encode("utf-8")) < 32:
            raise RuntimeError(f"BACKEND_SECRET_KEY is shorter than 32 bytes; {GENERATE_KEY_HINT}")
    app.config["SECRET_KEY"] = key
    app.config["JWT_SECRET_KEY"] = key
    app.config["JWT_ALGORITHM"] = "HS256"
    app.config["JWT_DECODE_ALGORITHMS"] = ["HS256"]
    app.config["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(minutes=app.config["ACCESS_TOKEN_EXPIRE_MINUTES"])
    app.config["JWT_REFRESH_TOKEN_EXPIRES"] = timedelta(days=app.config["REFRESH_TOKEN_EXPIRE_DAYS"])
    app.config["JWT_TOKEN_LOCATION"] = ["headers"]
    # Bearer headers only: no cookie, so no CSRF claim to carry (and verify) in every token.
    app.config["JWT_COOKIE_CSRF_PROTECT"] = False


class NoCookieSessions(SessionInterface):
    """Bearer tokens only: no cookie session is read or signed on any request."""

    def open_session(self, app, request):
        return self.make_null_session(app)

    def save_session(self, app, session, response) -> None:
        return None


NO_STORE_PREFIXES = ("/auth", "/logins")


def _security_headers(response):
    """Answers about accounts and credentials are never cached; no response is content-sniffed."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.path.startswith(NO_STORE_PREFIXES):
        response.headers["Cache-Control"] = "no-store"
    return response


def _document_security() -> None:
    components = api.spec.components
    if "bearerAuth" not in components.security_schemes:
        components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
        components.security_scheme(
            "OAuth2PasswordBearer",
            {"type": "oauth2", "flows": {"password": {"tokenUrl": "/auth/login", "scopes": {}}}},
        )


def _serve_swagger_ui_files(app: Flask) -> None:
    """Swagger UI's scripts and styles from the swagger-ui-bundle package: /docs needs no internet."""

    @app.get("/docs/static/<path:filename>")
    def swagger_ui_static(filename: str):
        return send_from_directory(str(swagger_ui_path), filename)
