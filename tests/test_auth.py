"""Accounts: register, log in (the frontend's multipart form, OAuth2 form, JSON), closed
registration, the password policy, and the bad registration and login requests refused."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
import time
from contextlib import closing

import pytest

from .helpers import (
    ADA,
    NOT_AN_OBJECT,
    TEN_THOUSAND,
    UNREADABLE_JSON,
    URLENCODED,
    as_json,
    assert_error,
    case,
    form,
    log_in,
    me_status,
    raw,
    snapshot,
    usernames,
)

ORIGIN = {"Origin": "https://multisite.example"}


def test_register_returns_the_account_as_typed(client):
    response = client.post(
        "/auth/register", json={"username": "  Ann.Lee ", "password": ADA["password"]}, headers=ORIGIN
    )
    assert response.status_code == 201
    assert response.json["username"] == "Ann.Lee"
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

    def timed(account) -> float:
        start = time.perf_counter()
        client.post("/auth/login", data=account)
        return time.perf_counter() - start

    unknown_account, wrong_password = {"username": "nobody", "password": "x" * 20}, {**ADA, "password": "x" * 20}
    timed(unknown_account)  # the first call builds the dummy hash
    # Taken in turns, so a busy machine slows both alike; the medians are compared.
    pairs = [(timed(unknown_account), timed(wrong_password)) for _ in range(9)]
    unknown, wrong = (sorted(column)[4] for column in zip(*pairs, strict=True))
    assert 0.5 < unknown / wrong < 2, (unknown, wrong)


def test_long_passwords_sharing_72_bytes_are_different_passwords(client):
    shared = "Ada's analytical engine wove algebraic patterns like a Jacquard loom did"
    assert len(shared.encode()) == 72
    first = shared + "first-ending-" + "b" * 15
    second = shared + "second-ending" + "b" * 15
    assert client.post("/auth/register", json={"username": "ada", "password": first}).status_code == 201
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
    assert usernames(app) == []


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


@pytest.mark.parametrize(
    "password",
    [
        "password1234567",
        "qwertyuiopasdfgh",
        "aaaaaaaaaaaaaaaaaaaa",
        "1234567890123456",
        "abcdefghijklmnopq",
        "iloveyouiloveyou",
        "zxcvbnmasdfghjkl",
        "carolcarolcarol1",
        "p" * 1024,
    ],
)
def test_well_known_long_passwords_are_refused(live, password):
    response = live.post("/auth/register", json={"username": "carol", "password": password})

    assert response.status_code == 422
    assert "guess" in " ".join(response.json()["errors"]["password"]) or "common" in response.json()["detail"]
    assert live.post("/auth/login", json={"username": "carol", "password": password}).status_code == 401


@pytest.mark.parametrize("password", ["tulipviolinox", "quietlyorbitingmoths", "ÅÄÖ åäö ok"])
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
        # The fullwidth form of the username: NFKC makes it "ada.lovelace.1815".
        json={"username": "ada.lovelace.1815", "password": "ａｄａ．ｌｏｖｅｌａｃｅ．１８１５"},
    )

    assert response.status_code == 422
    assert "password" in response.json["errors"]


# --- bad requests: each is refused and changes nothing -------------------------------------------


PASSWORD = ADA["password"]


def register(username="ada", password=PASSWORD, **extra):
    return as_json({"username": username, "password": password, **extra})


REGISTER_CASES = [
    *UNREADABLE_JSON,
    *NOT_AN_OBJECT,
    case(as_json({}), 422, "username", id="empty-object"),
    case(as_json({"username": "ada"}), 422, "password", id="missing-password"),
    case(as_json({"password": PASSWORD}), 422, "username", id="missing-username"),
    case(register(username=42), 422, "username", id="number-username"),
    case(register(username=True), 422, "username", id="bool-username"),
    case(register(username=["ada"]), 422, "username", id="list-username"),
    case(register(username={"first": "ada"}), 422, "username", id="object-username"),
    case(register(password=[PASSWORD]), 422, "password", id="list-password"),
    case(register(password=123456789012345678), 422, "password", id="number-password"),
    case(register(username=None), 422, "username", id="null-username"),
    case(register(password=None), 422, "password", id="null-password"),
    case(register(username="ad\x00a"), 422, "username", id="nul-in-username"),
    case(register(username="\x00ada"), 422, "username", id="leading-nul-in-username"),
    case(register(username="ad\x1b[31ma"), 422, "username", id="escape-in-username"),
    case(register(username="ad\na"), 422, "username", id="newline-in-username"),
    case(register(username="ad\ta"), 422, "username", id="tab-in-username"),
    case(register(username="ad\x7fa"), 422, "username", id="del-in-username"),
    case(register(username="ad\u0085a"), 422, "username", id="c1-control-in-username"),
    case(register(password=PASSWORD + "\x00"), 422, "password", id="nul-in-password"),
    # json.loads turns "\\ud800" into a lone surrogate, which UTF-8 (and so every database) cannot hold.
    case(raw(f'{{"username": "ada\\ud800", "password": "{PASSWORD}"}}'), (400, 422), "username", id="surrogate-user"),
    case(raw(f'{{"username": "ada", "password": "{PASSWORD}\\udfff"}}'), (400, 422), "password", id="surrogate-pass"),
    case(raw('{"user\\u0000name": "ada", "password": "' + PASSWORD + '"}'), 422, id="nul-in-field-name"),
    case(register(username="a" * TEN_THOUSAND), 422, "username", id="10000-char-username"),
    case(register(password="p" * TEN_THOUSAND), 422, "password", id="10000-char-password"),
    case(register(username="ab"), 422, "username", id="2-char-username"),
    case(register(username="   ab   "), 422, "username", id="2-char-username-after-trimming"),
    case(register(username="     "), 422, "username", id="whitespace-only-username"),
    case(register(username="\u3000\u3000\u3000\u3000"), 422, "username", id="ideographic-spaces-username"),
    case(register(username=""), 422, "username", id="empty-username"),
    case(register(username="a" * 65), 422, "username", id="65-char-username"),
    case(register(username="  " + "a" * 65 + "  "), 422, "username", id="65-char-username-after-trimming"),
    case(register(password="x" * 14), 422, "password", id="14-char-password"),
    case(register(password=""), 422, "password", id="empty-password"),
    case(register(password="a" * 1025), 422, "password", id="1025-char-password"),
    case(register("ada.lovelace.1815", "ada.lovelace.1815"), 422, "password", id="password-is-the-username"),
    case(register("Ada.Lovelace.1815", "ADA.LOVELACE.1815"), 422, "password", id="password-is-the-username-any-case"),
    case(register("  ada.lovelace.1815 ", "ada.lovelace.1815"), 422, "password", id="password-is-the-trimmed-username"),
    case(register(id=1), 422, "id", id="unknown-field-id"),
    case(register(is_admin=True), 422, "is_admin", id="unknown-field-is_admin"),
    case(form(ADA, URLENCODED), (415, 422), id="urlencoded-form"),
    case(form(ADA), (415, 422), id="multipart-form"),
    case(raw(json.dumps(ADA), "text/plain"), (415, 422), id="json-as-text-plain"),
]


@pytest.mark.parametrize(("kwargs", "status", "field"), REGISTER_CASES)
def test_bad_registration_is_refused_and_creates_no_account(app, client, kwargs, status, field):
    before = snapshot(app)

    assert_error(client.post("/auth/register", **kwargs), status, field)

    assert snapshot(app) == before
    sent = kwargs.get("json")
    if isinstance(sent, dict) and isinstance(sent.get("username"), str) and isinstance(sent.get("password"), str):
        login = client.post("/auth/login", json={"username": sent["username"], "password": sent["password"]})
        assert login.status_code in (401, 422), login.json
    # The name "ada" is still free.
    assert client.post("/auth/register", json=ADA).status_code == 201


LOGIN_CASES = [
    *UNREADABLE_JSON,
    *NOT_AN_OBJECT,
    case(as_json({}), 422, "username", id="json-empty-object"),
    case(as_json({"username": "ada"}), 422, "password", id="json-missing-password"),
    case(as_json({"password": PASSWORD}), 422, "username", id="json-missing-username"),
    case(form({"username": "ada"}), 422, "password", id="multipart-missing-password"),
    case(form({"password": PASSWORD}), 422, "username", id="multipart-missing-username"),
    case(form({}), 422, "username", id="multipart-no-fields"),
    case(form({"password": PASSWORD}, URLENCODED), 422, "username", id="urlencoded-missing-username"),
    case(form({"username": "ada"}, URLENCODED), 422, "password", id="urlencoded-missing-password"),
    case(
        form({"username": "ada", "password": (io.BytesIO(PASSWORD.encode()), "pw.txt")}),
        422,
        "password",
        id="multipart-password-as-a-file",
    ),
    case(as_json({"username": 42, "password": PASSWORD}), 422, "username", id="json-number-username"),
    case(as_json({"username": "ada", "password": [PASSWORD]}), 422, "password", id="json-list-password"),
    case(as_json({"username": "ada", "password": None}), 422, "password", id="json-null-password"),
    case(as_json({"username": None, "password": PASSWORD}), 422, "username", id="json-null-username"),
    case(as_json({"username": "ad\x00a", "password": PASSWORD}), 422, "username", id="json-nul-in-username"),
    case(form({"username": "ada", "password": PASSWORD + "\x00"}), 422, "password", id="multipart-nul-in-password"),
    case(as_json({"username": "a" * TEN_THOUSAND, "password": PASSWORD}), 422, "username", id="json-10000-char-user"),
    case(form({"username": "ada", "password": "p" * TEN_THOUSAND}), 422, "password", id="multipart-10000-char-pass"),
    case(
        form({"username": "a" * TEN_THOUSAND, "password": PASSWORD}, URLENCODED),
        422,
        "username",
        id="urlencoded-10000-char-username",
    ),
    case(form({**ADA, "grant_type": "client_credentials"}, URLENCODED), 422, "grant_type", id="wrong-grant-type"),
    case(raw("username=ada&password=x", "text/plain"), (415, 422), id="text-plain-body"),
]


@pytest.mark.parametrize(("kwargs", "status", "field"), LOGIN_CASES)
def test_bad_login_request_is_refused_without_a_token(app, client, ada, kwargs, status, field):
    before = snapshot(app)

    body = assert_error(client.post("/auth/login", **kwargs), status, field)

    assert "access_token" not in body
    assert snapshot(app) == before
