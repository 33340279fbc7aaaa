"""Each place the backend goes under a library's public API (see bench/README.md for why) has a
test here that fails if the library's behaviour underneath changes, so an upgrade cannot break
it silently."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from eventory_backend.auth.guard import REVOCATION_CHECK
from eventory_backend.auth.raw_driver_query import first_row
from eventory_backend.extensions import db, limiter
from eventory_backend.web.jwt_decode_cache import EXTENSION_KEY

from .helpers import ADA, register_and_login

# --- auth/raw_driver_query.py: the revocation check on the driver -----------------------------


def _tokens_of(app, client) -> tuple[int, str, str, dict]:
    headers = register_and_login(client, ADA)
    with app.app_context():
        user_id, family = db.session.execute(text("SELECT user_id, id FROM token_families")).one()
        jti = db.session.execute(text("SELECT jti FROM refresh_tokens")).scalar_one()
    return user_id, family, jti, headers


def test_the_driver_level_query_answers_what_sqlalchemy_answers(app, client):
    user_id, family, jti, _headers = _tokens_of(app, client)
    with app.app_context():
        db.session.execute(text("INSERT INTO revoked_tokens (jti, expires_at) VALUES ('gone', '2999-01-01')"))
        db.session.commit()
        cases = [
            {"user_id": user_id, "family": family, "jti": jti},  # a live token
            {"user_id": user_id, "family": family, "jti": "gone"},  # a logged-out access token
            {"user_id": user_id, "family": "no-such-family", "jti": jti},
            {"user_id": user_id, "family": None, "jti": None},
            {"user_id": user_id + 1, "family": family, "jti": jti},  # no such account
        ]
        for values in cases:
            with db.engine.connect() as connection:
                expected = connection.execute(REVOCATION_CHECK, values).first()
            got = first_row(db.engine, REVOCATION_CHECK, values)
            assert (tuple(got) if got is not None else None) == (tuple(expected) if expected is not None else None)
            if expected is not None:
                assert bool(got[3]) == bool(expected[3]) and bool(got[4]) == bool(expected[4])


def test_a_driver_error_is_raised_as_sqlalchemys_with_parameters_hidden(app, client):
    user_id, family, jti, headers = _tokens_of(app, client)
    with app.app_context():
        db.session.execute(text("DROP TABLE revoked_tokens"))
        db.session.commit()
        with pytest.raises(DBAPIError) as caught:
            first_row(db.engine, REVOCATION_CHECK, {"user_id": user_id, "family": family, "jti": jti})
        assert jti not in str(caught.value) and family not in str(caught.value)
    assert client.get("/auth/me", headers=headers).status_code == 503  # as any database error answers


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
