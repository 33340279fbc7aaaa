"""The account lifecycle: logout, refresh, password change, deletion, closed registration,
the password policy, and the headers that keep answers from lingering."""

from __future__ import annotations

import json
from datetime import timedelta

import jwt
import pytest

from eventory_backend.auth.models import User
from eventory_backend.extensions import db
from eventory_backend.logins.models import EventoryLogin

from .helpers import ADA, BOB, EVENTORY_LOGIN, account, bearer, log_in, register_and_login, save_login

NEW_PASSWORD = "a brand new passphrase for ada"


# --- helpers -------------------------------------------------------------------------------------


def bear(session: dict) -> dict:
    return bearer(session["access_token"])


def me_status(client, token: str) -> int:
    return client.get("/auth/me", headers=bearer(token)).status_code


def refresh(client, refresh_token: str):
    return client.post("/auth/refresh", headers=bearer(refresh_token))


def change_password(client, token: str, current: str, new: str):
    return client.put("/auth/password", json={"current_password": current, "new_password": new}, headers=bearer(token))


def delete_account(client, token: str, password: str):
    return client.delete("/auth/me", json={"password": password}, headers=bearer(token))


def assert_401(response):
    assert response.status_code == 401, (response.status_code, response.json)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert isinstance(response.json["detail"], str) and response.json["detail"]


# --- logout and logout-all -----------------------------------------------------------------------


def test_logout_ends_the_token_it_was_called_with(client, ada_tokens):
    response = client.post("/auth/logout", headers=bearer(ada_tokens["access_token"]))

    assert response.status_code == 204
    assert_401(client.get("/auth/me", headers=bearer(ada_tokens["access_token"])))
    assert_401(client.get("/logins", headers=bearer(ada_tokens["access_token"])))


def test_logout_ends_that_sessions_refresh_token_too(client, ada_tokens):
    client.post("/auth/logout", headers=bearer(ada_tokens["access_token"]))

    assert_401(refresh(client, ada_tokens["refresh_token"]))


def test_logout_leaves_the_users_other_sessions_alone(client, ada_tokens):
    phone = log_in(client)

    client.post("/auth/logout", headers=bearer(ada_tokens["access_token"]))

    assert me_status(client, phone["access_token"]) == 200
    assert refresh(client, phone["refresh_token"]).status_code == 200


def test_logging_in_again_after_logout_works(client, ada_tokens):
    client.post("/auth/logout", headers=bearer(ada_tokens["access_token"]))

    assert me_status(client, log_in(client)["access_token"]) == 200


def test_logout_all_ends_every_token_of_the_user_only(client, ada_tokens):
    phone = log_in(client)
    bob = register_and_login(client, BOB)

    response = client.post("/auth/logout-all", headers=bearer(ada_tokens["access_token"]))

    assert response.status_code == 204
    for session in (ada_tokens, phone):
        assert_401(client.get("/auth/me", headers=bearer(session["access_token"])))
        assert_401(refresh(client, session["refresh_token"]))
    assert client.get("/auth/me", headers=bob).status_code == 200
    assert me_status(client, log_in(client)["access_token"]) == 200


@pytest.mark.parametrize("route", ["/auth/logout", "/auth/logout-all"])
def test_logout_holds_after_a_restart_and_on_another_instance(make_app, route):
    first = make_app()
    first.test_client().post("/auth/register", json=ADA)
    session = log_in(first.test_client())
    assert first.test_client().post(route, headers=bearer(session["access_token"])).status_code == 204

    restarted = make_app().test_client()

    assert_401(restarted.get("/auth/me", headers=bearer(session["access_token"])))
    assert_401(refresh(restarted, session["refresh_token"]))


def test_password_change_holds_after_a_restart(make_app):
    first = make_app().test_client()
    first.post("/auth/register", json=ADA)
    laptop, phone = log_in(first), log_in(first)
    assert change_password(first, laptop["access_token"], ADA["password"], NEW_PASSWORD).status_code == 200

    restarted = make_app().test_client()

    assert_401(restarted.get("/auth/me", headers=bear(phone)))
    assert_401(refresh(restarted, phone["refresh_token"]))


# --- refresh tokens ------------------------------------------------------------------------------


def test_login_returns_a_refresh_token_beside_the_access_token(client, ada_tokens):
    assert ada_tokens["token_type"] == "bearer"
    assert isinstance(ada_tokens["expires_in"], int) and ada_tokens["expires_in"] > 0
    assert ada_tokens["refresh_token"] and ada_tokens["refresh_token"] != ada_tokens["access_token"]
    assert me_status(client, ada_tokens["access_token"]) == 200


@pytest.mark.parametrize("days", [None, 2])
def test_refresh_token_lives_for_the_configured_days(make_app, days):
    app = make_app() if days is None else make_app(REFRESH_TOKEN_EXPIRE_DAYS=days)
    client = app.test_client()
    client.post("/auth/register", json=ADA)

    claims = jwt.decode(log_in(client)["refresh_token"], options={"verify_signature": False})

    assert timedelta(seconds=claims["exp"] - claims["iat"]) == timedelta(days=days or 30)


def test_refresh_gives_a_new_working_pair(client, ada_tokens):
    response = refresh(client, ada_tokens["refresh_token"])

    assert response.status_code == 200, response.json
    pair = response.json
    assert pair["token_type"] == "bearer"
    assert pair["access_token"] != ada_tokens["access_token"]
    assert pair["refresh_token"] != ada_tokens["refresh_token"]
    assert client.get("/auth/me", headers=bear(pair)).json["username"] == "ada"
    assert refresh(client, pair["refresh_token"]).status_code == 200


def test_a_refresh_token_works_only_once(client, ada_tokens):
    assert refresh(client, ada_tokens["refresh_token"]).status_code == 200

    assert_401(refresh(client, ada_tokens["refresh_token"]))


def test_reused_refresh_token_ends_the_whole_family(client, ada_tokens):
    """A thief and the owner both hold the refresh token: whoever comes second ends them both."""
    rotated = refresh(client, ada_tokens["refresh_token"]).json
    other_device = log_in(client)

    assert_401(refresh(client, ada_tokens["refresh_token"]))

    assert_401(refresh(client, rotated["refresh_token"]))
    assert_401(client.get("/auth/me", headers=bear(rotated)))
    assert_401(client.get("/auth/me", headers=bear(ada_tokens)))
    # Another login of the same account is another family.
    assert me_status(client, other_device["access_token"]) == 200
    assert refresh(client, other_device["refresh_token"]).status_code == 200


def test_access_token_cannot_be_used_as_a_refresh_token(client, ada_tokens):
    assert_401(refresh(client, ada_tokens["access_token"]))

    # Nothing was rotated or ended by the attempt.
    assert me_status(client, ada_tokens["access_token"]) == 200
    assert refresh(client, ada_tokens["refresh_token"]).status_code == 200


PROTECTED = [
    ("GET", "/auth/me", None),
    ("DELETE", "/auth/me", {"password": ADA["password"]}),
    ("PUT", "/auth/password", {"current_password": ADA["password"], "new_password": NEW_PASSWORD}),
    ("POST", "/auth/logout", None),
    ("POST", "/auth/logout-all", None),
    ("GET", "/logins", None),
    ("POST", "/logins", EVENTORY_LOGIN),
    ("GET", "/logins/{id}", None),
    ("PUT", "/logins/{id}", {"color": "#000"}),
    ("DELETE", "/logins/{id}", None),
    ("POST", "/logins/{id}/session", None),
    ("GET", "/eventory/jobs/list", None),
    ("GET", "/multisite/jobs/list", None),
]


def test_refresh_token_cannot_be_used_as_an_access_token(app, client, ada_tokens, eventory):
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=bear(ada_tokens)).json["id"]
    eventory.reset()
    headers = {**bearer(ada_tokens["refresh_token"]), "X-Eventory-Login": str(login_id)}

    responses = {
        f"{method} {path}": client.open(path.format(id=login_id), method=method, json=body, headers=headers)
        for method, path, body in PROTECTED
    }

    assert {route: r.status_code for route, r in responses.items()} == dict.fromkeys(responses, 401)
    for response in responses.values():
        assert_401(response)
    assert eventory.requests == []
    assert client.get(f"/logins/{login_id}", headers=bear(ada_tokens)).json["color"] == EVENTORY_LOGIN["color"]
    assert client.post("/auth/login", data=ADA).status_code == 200


# --- password change -----------------------------------------------------------------------------


def test_password_change_with_the_wrong_current_password_is_403_and_changes_nothing(client, ada_tokens):
    phone = log_in(client)

    response = change_password(client, ada_tokens["access_token"], "not my password at all", NEW_PASSWORD)

    assert response.status_code == 403
    assert response.json["detail"]
    assert "access_token" not in response.json
    assert me_status(client, phone["access_token"]) == 200
    assert client.post("/auth/login", data=ADA).status_code == 200
    assert client.post("/auth/login", data={"username": "ada", "password": NEW_PASSWORD}).status_code == 401


@pytest.mark.parametrize(
    "new_password",
    ["short pass", "1qaz2wsx3edc4rfv", "qazwsxedcrfvtgb"],
    ids=["too-short", "common-and-long-enough", "common-15-characters"],
)
def test_password_change_to_a_password_the_policy_refuses_is_422(client, ada_tokens, new_password):
    response = change_password(client, ada_tokens["access_token"], ADA["password"], new_password)

    assert response.status_code == 422, response.json
    assert response.json["detail"]
    assert "new_password" in response.json["errors"]
    assert me_status(client, ada_tokens["access_token"]) == 200
    assert client.post("/auth/login", data=ADA).status_code == 200


def test_password_change_to_the_username_is_422(make_app):
    client = make_app().test_client()
    name = "ada lovelace 1815"
    client.post("/auth/register", json={"username": name, "password": ADA["password"]})
    token = log_in(client, {"username": name, "password": ADA["password"]})["access_token"]

    response = change_password(client, token, ADA["password"], "ADA LOVELACE 1815")

    assert response.status_code == 422
    assert "new_password" in response.json["errors"]


def test_password_change_ends_other_tokens_and_hands_back_a_fresh_pair(client, ada_tokens):
    phone = log_in(client)
    bob = register_and_login(client, BOB)

    response = change_password(client, ada_tokens["access_token"], ADA["password"], NEW_PASSWORD)

    assert response.status_code == 200, response.json
    fresh = response.json
    assert fresh["token_type"] == "bearer"
    assert client.get("/auth/me", headers=bear(fresh)).json["username"] == "ada"
    assert refresh(client, fresh["refresh_token"]).status_code == 200
    assert_401(client.get("/auth/me", headers=bear(phone)))
    assert_401(refresh(client, phone["refresh_token"]))
    assert client.get("/auth/me", headers=bob).status_code == 200
    assert client.post("/auth/login", data=ADA).status_code == 401
    assert client.post("/auth/login", data={"username": "ada", "password": NEW_PASSWORD}).status_code == 200


# --- account deletion ----------------------------------------------------------------------------


def test_account_deletion_with_the_wrong_password_is_403_and_deletes_nothing(client, ada_tokens):
    client.post("/logins", json=EVENTORY_LOGIN, headers=bear(ada_tokens))

    response = delete_account(client, ada_tokens["access_token"], "not my password at all")

    assert response.status_code == 403
    assert response.json["detail"]
    assert me_status(client, ada_tokens["access_token"]) == 200
    assert len(client.get("/logins", headers=bear(ada_tokens)).json) == 1


def test_account_deletion_removes_the_user_their_logins_and_their_tokens(app, client, ada_tokens):
    phone = log_in(client)
    client.post("/logins", json=EVENTORY_LOGIN, headers=bear(ada_tokens))
    client.post("/logins", json={**EVENTORY_LOGIN, "label": "Org Two"}, headers=bear(ada_tokens))
    bob = register_and_login(client, BOB)
    client.post("/logins", json=EVENTORY_LOGIN, headers=bob)

    response = delete_account(client, ada_tokens["access_token"], ADA["password"])

    assert response.status_code == 204
    for session in (ada_tokens, phone):
        assert_401(client.get("/auth/me", headers=bear(session)))
        assert_401(client.get("/logins", headers=bear(session)))
        assert_401(refresh(client, session["refresh_token"]))
    assert client.post("/auth/login", data=ADA).status_code == 401
    with app.app_context():
        assert db.session.execute(db.select(User.username)).scalars().all() == ["bob"]
        owners = db.session.execute(db.select(EventoryLogin.owner_id)).scalars().all()
        bob_id = db.session.execute(db.select(User.id)).scalar_one()
        assert owners == [bob_id]
    assert len(client.get("/logins", headers=bob).json) == 1


def test_deleted_accounts_name_can_be_registered_again_empty(client, ada_tokens):
    client.post("/logins", json=EVENTORY_LOGIN, headers=bear(ada_tokens))
    delete_account(client, ada_tokens["access_token"], ADA["password"])

    again = register_and_login(client, ADA)

    assert client.get("/logins", headers=again).json == []
    assert_401(client.get("/auth/me", headers=bear(ada_tokens)))


def test_account_deletion_forgets_cached_eventory_tokens(live, eventory):
    eventory.add_user("bruno@example.com", "eventory-pass-2", "Org Two")
    cache = live.app.extensions["eventory_tokens"]
    ada = account(live)
    ada_login = save_login(live, ada)
    first = live.get("/eventory/user-info", headers={**ada, "X-Eventory-Login": str(ada_login)})
    assert first.json()["organizationName"] == "Org One"
    assert cache.cached(ada_login) is not None

    deleted = live.request("DELETE", "/auth/me", json={"password": ADA["password"]}, headers=ada)

    assert deleted.status_code == 204
    assert cache.cached(ada_login) is None
    # On SQLite the freed login id is handed out again: a token left in the cache would
    # answer for Ada's organisation here.
    bob = account(live, BOB)
    bob_login = save_login(live, bob, label="Bruno", username="bruno@example.com", password="eventory-pass-2")
    answer = live.get("/eventory/user-info", headers={**bob, "X-Eventory-Login": str(bob_login)})
    assert answer.json()["organizationName"] == "Org Two"
    assert eventory.login_count["bruno@example.com"] == 1


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


# --- bad bodies on the lifecycle routes ----------------------------------------------------------

DEEP_JSON = "[" * 100_000 + "]" * 100_000


def raw(body: str) -> dict:
    return {"data": body, "content_type": "application/json"}


BAD_PASSWORD_CHANGES = [
    pytest.param(raw(DEEP_JSON), id="deeply-nested"),
    pytest.param(raw('{"current_password": ' + "9" * 5_000 + "}"), id="5000-digit-number"),
    pytest.param(raw("[]"), id="array"),
    pytest.param(raw(""), id="empty-body"),
    pytest.param({"json": {"current_password": ADA["password"]}}, id="missing-new-password"),
    pytest.param({"json": {"new_password": NEW_PASSWORD}}, id="missing-current-password"),
    pytest.param({"json": {"current_password": ADA["password"], "new_password": NEW_PASSWORD + "\x00"}}, id="nul"),
    pytest.param({"json": {"current_password": ADA["password"], "new_password": "n" * 10_000}}, id="10000-chars"),
    pytest.param({"json": {"current_password": ADA["password"], "new_password": None}}, id="null"),
    pytest.param({"json": {"current_password": ADA["password"], "new_password": [NEW_PASSWORD]}}, id="list"),
    pytest.param(
        {"json": {"current_password": ADA["password"], "new_password": NEW_PASSWORD, "owner_id": 2}}, id="owner_id"
    ),
    pytest.param({"json": {"current_password": ADA["password"], "new_password": NEW_PASSWORD, "id": 2}}, id="id"),
    pytest.param({"json": {"current_password": ADA["password"] + "\x00", "new_password": NEW_PASSWORD}}, id="nul-cur"),
]


@pytest.mark.parametrize("kwargs", BAD_PASSWORD_CHANGES)
def test_bad_password_change_body_is_a_4xx_and_changes_nothing(client, ada_tokens, kwargs):
    response = client.put("/auth/password", headers=bear(ada_tokens), **kwargs)

    assert 400 <= response.status_code < 500 and response.status_code not in (401, 403), response.status_code
    assert isinstance(response.json["detail"], str) and response.json["detail"]
    assert me_status(client, ada_tokens["access_token"]) == 200
    assert client.post("/auth/login", data=ADA).status_code == 200


BAD_DELETIONS = [
    pytest.param(raw(DEEP_JSON), id="deeply-nested"),
    pytest.param(raw("[]"), id="array"),
    pytest.param(raw(""), id="empty-body"),
    pytest.param({"json": {}}, id="missing-password"),
    pytest.param({"json": {"password": ADA["password"] + "\x00"}}, id="nul"),
    pytest.param({"json": {"password": "p" * 10_000}}, id="10000-chars"),
    pytest.param({"json": {"password": None}}, id="null"),
    pytest.param({"json": {"password": ADA["password"], "owner_id": 2}}, id="owner_id"),
    pytest.param({"json": {"password": ADA["password"], "id": 2}}, id="id"),
]


@pytest.mark.parametrize("kwargs", BAD_DELETIONS)
def test_bad_account_deletion_body_is_a_4xx_and_deletes_nothing(client, ada_tokens, kwargs):
    response = client.delete("/auth/me", headers=bear(ada_tokens), **kwargs)

    assert 400 <= response.status_code < 500 and response.status_code not in (401, 403), response.status_code
    assert isinstance(response.json["detail"], str) and response.json["detail"]
    assert me_status(client, ada_tokens["access_token"]) == 200


@pytest.mark.parametrize(
    "login_id",
    ["\u0661", "\uff11", "9223372036854775808", "99999999999999999999", "-1"],
    ids=["arabic-indic-one", "fullwidth-one", "two-to-the-63", "twenty-nines", "minus-one"],
)
def test_session_route_with_a_login_id_that_is_not_a_plain_int64_is_404(client, ada_tokens, eventory, login_id):
    client.post("/logins", json=EVENTORY_LOGIN, headers=bear(ada_tokens))
    eventory.reset()

    response = client.post(f"/logins/{login_id}/session", headers=bear(ada_tokens))

    assert response.status_code == 404
    assert response.json["detail"]
    assert eventory.requests == []


@pytest.mark.parametrize(
    "value", ["\u0661", "\uff11", "9223372036854775808"], ids=["arabic-indic", "fullwidth", "two-to-the-63"]
)
def test_fan_out_with_a_login_id_that_is_not_a_plain_int64_is_422(client, ada_tokens, eventory, value):
    client.post("/logins", json=EVENTORY_LOGIN, headers=bear(ada_tokens))
    eventory.reset()

    response = client.get("/multisite/jobs/list", query_string={"logins": value}, headers=bear(ada_tokens))

    assert response.status_code == 422
    assert eventory.requests == []


# --- responses that do not linger ----------------------------------------------------------------


def _auth_and_logins_requests(client, session, login_id):
    headers = bear(session)
    return {
        "register": client.post("/auth/register", json={"username": "carol", "password": ADA["password"]}),
        "register-422": client.post("/auth/register", json={}),
        "login": client.post("/auth/login", data=ADA),
        "login-401": client.post("/auth/login", data={"username": "ada", "password": "wrong wrong wrong"}),
        "me": client.get("/auth/me", headers=headers),
        "me-401": client.get("/auth/me"),
        "refresh": client.post("/auth/refresh", headers=bearer(session["refresh_token"])),
        "password-403": client.put(
            "/auth/password",
            json={"current_password": "wrong wrong wrong", "new_password": NEW_PASSWORD},
            headers=headers,
        ),
        "logins": client.get("/logins", headers=headers),
        "login-by-id": client.get(f"/logins/{login_id}", headers=headers),
        "logins-create": client.post("/logins", json=EVENTORY_LOGIN, headers=headers),
        "logins-edit": client.put(f"/logins/{login_id}", json={"color": "#000"}, headers=headers),
        "logins-404": client.get("/logins/999999", headers=headers),
        "logins-422": client.post("/logins", json={}, headers=headers),
        "logins-405": client.patch("/logins", headers=headers),
        "logout": client.post("/auth/logout", headers=headers),
    }


def test_auth_and_logins_answers_are_never_cached(client, ada_tokens):
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=bear(ada_tokens)).json["id"]

    responses = _auth_and_logins_requests(client, ada_tokens, login_id)

    assert {name: r.headers.get("Cache-Control") for name, r in responses.items()} == {
        name: "no-store" for name in responses
    }


def test_every_answer_forbids_content_sniffing(make_app, eventory):
    app = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("crash")

    client = app.test_client()
    client.post("/auth/register", json=ADA)
    session = log_in(client)
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=bear(session)).json["id"]
    responses = {
        **_auth_and_logins_requests(client, session, login_id),
        "openapi": client.get("/openapi.json"),
        "docs": client.get("/docs"),
        "healthz": client.get("/healthz"),
        "404": client.get("/no/such/route"),
        "405": client.patch("/auth/me"),
        "413": client.post("/auth/register", data="x" * (1024 * 1024 + 1), content_type="application/json"),
        "500": client.get("/boom"),
        "preflight": client.options(
            "/logins", headers={"Origin": "https://multisite.example", "Access-Control-Request-Method": "POST"}
        ),
        "relayed": client.get("/eventory/echo", headers=bear(log_in(client))),
        "trace": client.open("/auth/me", method="TRACE"),
    }

    assert {name: r.headers.get("X-Content-Type-Options") for name, r in responses.items()} == {
        name: "nosniff" for name in responses
    }


TRACE_PATHS = [
    "/",
    "/auth/me",
    "/auth/login",
    "/logins",
    "/logins/{id}",
    "/eventory/echo",
    "/multisite/echo",
    "/openapi.json",
    "/docs",
]


def test_no_route_answers_trace(client, ada_tokens, eventory):
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=bear(ada_tokens)).json["id"]
    eventory.reset()
    headers = {**bear(ada_tokens), "X-Secret-Probe": "trace-me"}

    responses = {path: client.open(path.format(id=login_id), method="TRACE", headers=headers) for path in TRACE_PATHS}

    statuses = {path: response.status_code for path, response in responses.items()}
    assert all(status in (404, 405) for status in statuses.values()), statuses
    for response in responses.values():
        assert response.mimetype == "application/json"
        assert set(response.json) == {"detail"}
        text = json.dumps(response.json)
        assert "trace-me" not in text and ada_tokens["access_token"] not in text
    assert eventory.requests == []
