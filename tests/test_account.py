"""Ada's own account: changing her password and deleting the account, and the bad bodies both
routes refuse."""

from __future__ import annotations

import pytest

from .helpers import (
    ADA,
    BOB,
    DEEP_JSON,
    EVENTORY_LOGIN,
    NEW_PASSWORD,
    assert_401,
    bear,
    bearer,
    log_in,
    login_owners,
    me_status,
    raw,
    refresh,
    register_and_login,
    usernames,
)


def change_password(client, token: str, current: str, new: str):
    return client.put("/auth/password", json={"current_password": current, "new_password": new}, headers=bearer(token))


def delete_account(client, token: str, password: str):
    return client.delete("/auth/me", json={"password": password}, headers=bearer(token))


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
    name = "ada.lovelace.1815"
    client.post("/auth/register", json={"username": name, "password": ADA["password"]})
    token = log_in(client, {"username": name, "password": ADA["password"]})["access_token"]

    response = change_password(client, token, ADA["password"], "ADA.LOVELACE.1815")

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


def test_password_change_holds_after_a_restart(make_app):
    first = make_app().test_client()
    first.post("/auth/register", json=ADA)
    laptop, phone = log_in(first), log_in(first)
    assert change_password(first, laptop["access_token"], ADA["password"], NEW_PASSWORD).status_code == 200

    restarted = make_app().test_client()

    assert_401(restarted.get("/auth/me", headers=bear(phone)))
    assert_401(refresh(restarted, phone["refresh_token"]))


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
    assert usernames(app) == ["bob"]
    assert login_owners(app) == ["bob"]
    assert len(client.get("/logins", headers=bob).json) == 1


def test_deleted_accounts_name_can_be_registered_again_empty(client, ada_tokens):
    client.post("/logins", json=EVENTORY_LOGIN, headers=bear(ada_tokens))
    delete_account(client, ada_tokens["access_token"], ADA["password"])

    again = register_and_login(client, ADA)

    assert client.get("/logins", headers=again).json == []
    assert_401(client.get("/auth/me", headers=bear(ada_tokens)))


# --- bad bodies ----------------------------------------------------------------------------------


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
