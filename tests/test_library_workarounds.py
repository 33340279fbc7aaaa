"""Each place the backend goes under a library's public API (see bench/README.md for why) has a
test here that fails if the library's behaviour underneath changes, so an upgrade cannot break
it silently."""

from __future__ import annotations

import pytest
import requests
from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from eventory_backend.extensions import limiter
from eventory_backend.logins import services as logins
from eventory_backend.logins.listing_without_orm import login_summaries
from eventory_backend.logins.schemas import LoginSchema
from eventory_backend.proxy.unmerged_request import new_session, prepare
from eventory_backend.web.jwt_decode_cache import EXTENSION_KEY

from .helpers import ADA, EVENTORY_LOGIN, register_and_login

# --- proxy/unmerged_request.py: requests prepared without the session's merge -------------------


@pytest.mark.parametrize(
    ("method", "url", "headers", "data"),
    [
        ("GET", "http://127.0.0.1:9/jobs/list?a=1&a=2", {"Accept": "application/json"}, None),
        ("POST", "http://127.0.0.1:9/login-json", {"Accept": "application/json"}, {"username": "u", "password": "p"}),
        ("PUT", "http://127.0.0.1:9/pack-list-rentals/7", {"Content-Type": "application/json"}, b'{"a": 1}'),
        ("DELETE", "http://127.0.0.1:9/x", {}, None),
    ],
)
def test_a_request_prepared_alone_is_what_the_session_would_prepare(method, url, headers, data):
    session = new_session(pool_size=4)
    ours = prepare(method, url, headers, data)
    theirs = session.prepare_request(requests.Request(method, url, headers=headers, data=data))
    assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
    assert dict(ours.headers) == dict(theirs.headers), "requests' Session now adds something to every request"
    assert theirs.hooks == ours.hooks


# --- logins/listing_without_orm.py: GET /logins without the ORM or the schema -------------------


def test_the_listing_rows_are_loginschemas_dump(app, client, ada):
    for number in range(3):
        client.post("/logins", json={**EVENTORY_LOGIN, "label": f"Org {number}"}, headers=ada)
    with app.app_context():
        owned = logins.list_logins(1)
        logins.set_organisation(1, owned[0].id, "Org One")
        dumped = LoginSchema(many=True).dump(logins.list_logins(1))
        assert login_summaries(1) == dumped
    assert client.get("/logins", headers=ada).json == dumped


# --- web/jwt_decode_cache.py: verified tokens remembered ----------------------------------------


def test_flask_jwt_extended_decodes_bearer_tokens_through_the_remembering_method(app, client):
    headers = register_and_login(client, ADA)
    cache = app.extensions[EXTENSION_KEY]
    token = headers["Authorization"].removeprefix("Bearer ")
    assert cache.get(token) is None
    assert client.get("/auth/me", headers=headers).status_code == 200
    remembered = cache.get(token)
    assert remembered is not None, "flask-jwt-extended no longer decodes through _decode_jwt_from_config"
    assert remembered["sub"] == "1"
    # A token that differs from a remembered one in its signature is still refused.
    assert client.get("/auth/me", headers={"Authorization": headers["Authorization"][:-2] + "xx"}).status_code == 401


# --- limiter_app_wide_pass.py: Flask-Limiter's app-wide pass taken out --------------------------


def test_flask_limiter_registers_the_app_wide_pass_that_is_taken_out(app):
    plain = Flask("plain")
    plain.config["RATELIMIT_STORAGE_URI"] = "memory://"
    own = Limiter(key_func=get_remote_address)
    own.init_app(plain)
    assert own._check_request_limit in plain.before_request_funcs.get(None, []), (
        "Flask-Limiter no longer registers _check_request_limit as its app-wide pass"
    )
    assert limiter._check_request_limit not in app.before_request_funcs.get(None, [])
