"""The account console at /account: one page, its stylesheet, its script module and its icon,
shipped in the package (no build step, no CDN), calling the JSON API with the bearer token. It is a
page for people, not part of the API, so it is a plain Flask blueprint and stays out of the OpenAPI
document. Its Content-Security-Policy and Cache-Control are set with every other security header
(web/middleware.py)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, render_template, send_from_directory
from werkzeug.exceptions import NotFound

STATIC = Path(__file__).resolve().parent / "static"
# Stated, not guessed: on Windows, Python's mimetypes reads the registry, which can call .js
# text/plain, and a browser refuses to run a module script served so.
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

blp = Blueprint("account", __name__, url_prefix="/account", template_folder="templates")


@blp.get("")
def console():
    """The account console."""
    config = current_app.config
    return render_template(
        "account/index.html",
        registration_open=config["REGISTRATION_OPEN"],
        password_min_length=config["PASSWORD_MIN_LENGTH"],
    )


@blp.get("/static/<path:filename>")
def asset(filename: str):
    """One of the console's files."""
    media_type = MEDIA_TYPES.get(Path(filename).suffix)
    if media_type is None:
        raise NotFound()
    return send_from_directory(STATIC, filename, mimetype=media_type)
