"""Accounts: register, log in (the frontend's multipart form, OAuth2 form, JSON), who am I."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing

import jwt
import pytest

from .helpers import ADA, EVENTORY_LOGIN, register_and_login

ORIGIN = {"Origin": "https://multisite.example"}


def test_register_returns_the_account_as_typed(client):
    response = client.post(
        "/auth/register", json={"username": "  Ann Lee ", "password": ADA["password"]}, headers=ORIGIN
    )
    assert response.status_code == 201
    assert response.json["username"] == "Ann Lee"
    assert "password" not in response.json and "password_hash" not in response.json


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded", "json"])
def test_login_accepts_the_three_encodings(client, encoding):
    client.post("/auth/register", json=ADA)
    if encoding == "multipart":
        response = client.post("/auth/login", data=ADA, content_type="multipart/form-data")
    elif encoding == "urlencoded":
        response = client.post("/auth/login", data={**ADA, "grant_type": "password", "scope": ""})
    else:
        response = client.post("/auth/login", json=ADA)
    assert response.status_code == 200, response.json
    assert response.json["token_type"] == "bearer"
    assert response.json["expires_in"] == 1440 * 60
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {response.json['access_token']}"})
    assert me.status_code == 200 and me.json["username"] == "ada"


def test_usernames_are_unique_case_insensitively(client):
    assert client.post("/auth/register", json={"username": "Ann", "password": ADA["password"]}).status_code == 201
    second = client.post("/auth/register", json={"username": "aNN", "password": ADA["password"]})
    assert second.status_code == 409
    assert "taken" in second.json["detail"]
    assert client.post("/auth/login", data={"username": "ANN", "password": ADA["password"]}).status_code == 200


def test_wrong_password_and_unknown_user_are_the_same_401(client):
    client.post("/auth/register", json=ADA)
    wrong = client.post("/auth/login", data={"username": "ada", "password": "not the right password at all"})
    unknown = client.post("/auth/login", data={"username": "nobody", "password": ADA["password"]})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json
    assert wrong.headers["WWW-Authenticate"] == "Bearer"


def test_unknown_user_costs_about_as_long_as_a_wrong_password(make_app):
    client = make_app(BCRYPT_LOG_ROUNDS=8).test_client()
    client.post("/auth/register", json=ADA)

    def median(account):
        samples = []
        for _ in range(7):
            start = time.perf_counter()
            client.post("/auth/login", data=account)
            samples.append(time.perf_counter() - start)
        return sorted(samples)[3]

    median({"username": "nobody", "password": "x" * 20})  # first call builds the dummy hash
    wrong = median({"username": "ada", "password": "x" * 20})
    unknown = median({"username": "nobody", "password": "x" * 20})
    assert 0.5 < unknown / wrong < 2, (unknown, wrong)


def test_long_passwords_sharing_72_bytes_are_different_passwords(client):
    first = "a" * 72 + "first-ending-" + "b" * 15
    second = "a" * 72 + "second-ending" + "b" * 15
    client.post("/auth/register", json={"username": "ada", "password": first})
    assert client.post("/auth/login", data={"username": "ada", "password": first}).status_code == 200
    assert client.post("/auth/login", data={"username": "ada", "password": second}).status_code == 401


def test_passphrase_of_1024_unicode_characters_works(client):
    password = "åäö ünïcødé " * 85 + "end!"
    assert len(password) == 1024
    client.post("/auth/register", json={"username": "ada", "password": password})
    assert client.post("/auth/login", data={"username": "ada", "password": password}).status_code == 200


def test_minimum_password_length_comes_from_config(make_app):
    client = make_app(PASSWORD_MIN_LENGTH=20).test_client()
    response = client.post("/auth/register", json={"username": "ada", "password": "nineteen characters"})
    assert response.status_code == 422
    assert "20" in response.json["errors"]["password"][0]


def test_password_is_hashed_with_bcrypt_never_stored_in_clear(app, client, database_url):
    client.post("/auth/register", json=ADA)
    if database_url.startswith("sqlite"):
        with closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as connection:
            (stored,) = connection.execute("SELECT password_hash FROM users").fetchone()
        assert stored.startswith("$2b$04$")
        assert ADA["password"] not in stored


def test_an_access_token_carries_only_what_its_checks_need(client):
    """Readable by anyone who holds it, so no username or other personal data; and, being a bearer
    header rather than a cookie, no CSRF value (which would only lengthen every request)."""
    token = register_and_login(client, ADA)["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) == {"sub", "type", "fresh", "jti", "iat", "nbf", "exp", "gen", "fam"}
    assert claims["type"] == "access" and claims["sub"].isdigit()


def test_timestamps_are_utc_whatever_the_database_servers_time_zone(make_app, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("only a database server has a time zone of its own (the PostgreSQL run covers this)")
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"options": "-c TimeZone=Europe/Stockholm"}})
    client = app.test_client()
    headers = register_and_login(client, ADA)
    assert client.get("/auth/me", headers=headers).json["created_at"].endswith("+00:00")
    saved = client.post("/logins", json=EVENTORY_LOGIN, headers=headers).json
    listed = client.get("/logins", headers=headers).json[0]
    assert saved["created_at"].endswith("+00:00") and listed["updated_at"].endswith("+00:00")


def test_me_needs_a_token(client):
    response = client.get("/auth/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "detail" in response.json


def test_token_of_a_deleted_user_is_401(app, client, ada):
    from eventory_backend.auth.models import User
    from eventory_backend.extensions import db

    with app.app_context():
        db.session.execute(db.delete(User))
        db.session.commit()
    response = client.get("/auth/me", headers=ada)
    assert response.status_code == 401


def test_tokens_survive_a_restart(make_app):
    first = make_app()
    headers = register_and_login(first.test_client(), ADA)
    second = make_app()
    assert second.test_client().get("/auth/me", headers=headers).status_code == 200


def test_racing_registrations_of_one_name_give_one_account(live):
    results = []
    barrier = threading.Barrier(8)

    def register(name):
        barrier.wait()
        results.append(live.post("/auth/register", json={"username": name, "password": ADA["password"]}).status_code)

    names = ["Ann", "ann", "ANN", "aNn", "AnN", "anN", "ANn", "Ann"]
    threads = [threading.Thread(target=register, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [201] + [409] * 7


# A verified token is remembered (verified_tokens.py); these hold what the cache must not change.


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_remembered_token_still_ends_at_logout(client, ada):
    assert client.get("/auth/me", headers=ada).status_code == 200
    assert client.get("/auth/me", headers=ada).status_code == 200
    assert client.post("/auth/logout", headers=ada).status_code == 204
    assert client.get("/auth/me", headers=ada).status_code == 401


def test_a_remembered_token_is_refused_once_it_expires(app, client, ada):
    from datetime import timedelta

    from flask_jwt_extended import create_access_token, decode_token

    with app.app_context():
        claims = decode_token(ada["Authorization"].split()[1])
        short = create_access_token(
            identity=claims["sub"],
            additional_claims={"gen": claims["gen"], "fam": claims["fam"]},
            expires_delta=timedelta(seconds=1),
        )
    assert client.get("/auth/me", headers=_bearer(short)).status_code == 200  # verified, now remembered
    time.sleep(2.1)  # exp is in whole seconds
    response = client.get("/auth/me", headers=_bearer(short))
    assert response.status_code == 401
    assert "expired" in response.json["detail"]


def test_a_token_differing_only_in_its_signature_is_checked_afresh_and_refused(client, ada):
    token = ada["Authorization"].split()[1]
    assert client.get("/auth/me", headers=ada).status_code == 200
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    assert client.get("/auth/me", headers=_bearer(forged)).status_code == 401


def test_a_token_remembered_by_one_app_is_not_trusted_by_an_app_with_another_key(make_app):
    first = make_app(SECRET_KEY="first-secret-key-of-at-least-32-bytes")
    headers = register_and_login(first.test_client(), ADA)
    assert first.test_client().get("/auth/me", headers=headers).status_code == 200
    other = make_app(SECRET_KEY="another-secret-key-of-at-least-32-bytes")
    assert other.test_client().get("/auth/me", headers=headers).status_code == 401


def test_the_verified_token_cache_is_bounded_and_hands_out_copies():
    from eventory_backend.verified_tokens import VerifiedTokens

    cache = VerifiedTokens(max_entries=2)
    later = time.time() + 60
    for name in ("a", "b", "c"):
        cache.put(name, {"sub": name, "exp": later})
    # Full at the third: it starts over with that one.
    assert [name for name in ("a", "b", "c") if cache.get(name) is not None] == ["c"]
    assert cache.get("c") == {"sub": "c", "exp": later}
    cache.get("c")["sub"] = "changed"
    assert cache.get("c")["sub"] == "c"
    cache.put("gone", {"sub": "x", "exp": time.time() - 1})
    assert cache.get("gone") is None
    cache.put("no-expiry", {"sub": "x"})
    assert cache.get("no-expiry") is None


def test_a_timedelta_leeway_is_honoured_by_the_remembered_tokens(make_app):
    from datetime import timedelta

    client = make_app(JWT_DECODE_LEEWAY=timedelta(seconds=5)).test_client()
    headers = register_and_login(client, ADA)
    assert client.get("/auth/me", headers=headers).status_code == 200
    assert client.get("/auth/me", headers=headers).status_code == 200  # from the cache
