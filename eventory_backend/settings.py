"""Settings derived at start-up from the configuration (database URL, engine options, keys and
token lifetimes), and the secrets generated once into the instance folder."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from flask import Flask

SEED_SECRET_KEY = "change-me-in-production-use-a-long-random-string"  # noqa: S105 - the value we refuse
GENERATE_KEY_HINT = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'


def derive(app: Flask) -> None:
    """What follows from the configuration: the SQLite default, engine options, the signing key
    (checked, or generated into the instance folder) and flask-jwt-extended's settings."""
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


def read_or_create(folder: str, name: str, make: Callable[[], str]) -> str:
    """The value stored in `folder/name`, creating it with `make()` the first time.

    Several processes may start at once: each writes its own candidate file and links it
    into place; the first link wins and everyone reads the winner.
    """
    path = Path(folder) / name
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{name}.{secrets.token_hex(8)}")
    # 0o600: owner-only on POSIX; on Windows the instance folder's ACL applies.
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(make() + "\n")
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass
    finally:
        candidate.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> str:
    value = path.read_text(encoding="ascii").strip()
    if not value:
        raise RuntimeError(f"{path.name} in the instance folder is empty; delete it to generate a new one.")
    return value
