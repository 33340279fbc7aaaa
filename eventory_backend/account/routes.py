"""The account console at /account: one page, its stylesheet and its script module, shipped in
the package (no build step, no CDN), calling the JSON API with the bearer token. It is a page for
people, not part of the API, so it is a plain Flask blueprint and stays out of the OpenAPI
document. Its Content-Security-Policy and Cache-Control are set with every other security header
(web/middleware.py)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

blp = Blueprint(
    "account",
    __name__,
    url_prefix="/account",
    static_folder="static",
    static_url_path="/static",
    template_folder="templates",
)


@blp.get("")
def console():
    """The account console."""
    config = current_app.config
    return render_template(
        "account/index.html",
        registration_open=config["REGISTRATION_OPEN"],
        password_min_length=config["PASSWORD_MIN_LENGTH"],
    )
