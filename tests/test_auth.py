"""Accounts: register, log in (the frontend's multipart form, OAuth2 form, JSON), closed
registration and the password policy."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing

import pytest

from eventory_backend.auth.models import User
from eventory_backend.extensions import db

from .helpers import ADA, EVENTORY_LOGIN, log_in, me_status, register_and_login

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


# --- closed registration -------------------------------------------------------------------------


def test_closed_registration_is_403_and_creates_no_account(make_app):
    app = make_app(REGISTRATION_OPEN=False)
    client = app.test_client()

    response = client.post("/auth/register", json=ADA)

    assert response.status_code == 403
    assert "closed" in response.json["detail"].lower()
    assert client.post("/auth/login", data=ADA).status_code == 401
    with app.app_context():
        assert db.session.execute(db.select(User)).first() is None


def test_closed_registration_still_lets_existing_accounts_log_in(make_app):
    make_app().test_client().post("/auth/register", json=ADA)

    closed = make_app(REGISTRATION_OPEN=False).test_client()

    assert me_status(closed, log_in(closed)["access_token"]) == 200


# --- password policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    ["password", "iloveyou", "12345678", "PassWord123", "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44"],
    ids=["password", "iloveyou", "12345678", "any-case", "fullwidth-password"],
)
def test_common_password_is_refused_even_when_long_enough(make_app, password):
    client = make_app(PASSWORD_MIN_LENGTH=8).test_client()

    response = client.post("/auth/register", json={"username": "carol", "password": password})

    assert response.status_code == 422
    assert "common" in " ".join(response.json["errors"]["password"])


def test_common_password_of_the_default_length_is_refused(client):
    response = client.post("/auth/register", json={"username": "carol", "password": "qazwsxedcrfvtgb"})

    assert response.status_code == 422
    assert "common" in " ".join(response.json["errors"]["password"])


@pytest.mark.parametrize("password", ["tulip-ox", "alllowercase", "ÅÄÖ åäö ok"])
def test_uncommon_password_needs_no_composition_rules(make_app, password):
    client = make_app(PASSWORD_MIN_LENGTH=8).test_client()

    assert client.post("/auth/register", json={"username": "carol", "password": password}).status_code == 201
    assert client.post("/auth/login", json={"username": "carol", "password": password}).status_code == 200


@pytest.mark.parametrize(
    ("registered", "typed"),
    [
        (
            "\uff4d\uff59\u3000\uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48\u3000\uff50\uff41\uff53\uff53",
            "my fullwidth pass",
        ),
        (
            "my fullwidth pass",
            "\uff4d\uff59\u3000\uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48\u3000\uff50\uff41\uff53\uff53",
        ),
        ("cafe\u0301 au lait in paris", "caf\u00e9 au lait in paris"),
        ("the \ufb01sh of the o\ufb03ce", "the fish of the office"),
        ("chapter \u2167 verse \u2460\u2461", "chapter VIII verse 12"),
    ],
    ids=["fullwidth-then-ascii", "ascii-then-fullwidth", "decomposed-then-composed", "ligatures", "numerals"],
)
def test_password_is_compared_in_its_nfkc_form(client, registered, typed):
    assert client.post("/auth/register", json={"username": "carol", "password": registered}).status_code == 201

    assert client.post("/auth/login", json={"username": "carol", "password": typed}).status_code == 200
    assert client.post("/auth/login", json={"username": "carol", "password": registered}).status_code == 200
    assert client.post("/auth/login", json={"username": "carol", "password": typed + "!"}).status_code == 401


def test_password_equal_to_the_username_in_another_unicode_form_is_refused(client):
    response = client.post(
        "/auth/register",
        # The fullwidth form of the username: NFKC makes it "ada lovelace 1815".
        json={"username": "ada lovelace 1815", "password": "ａｄａ ｌｏｖｅｌａｃｅ １８１５"},
    )

    assert response.status_code == 422
    assert "password" in response.json["errors"]
