"""`flask users ...` and `flask credentials rotate`, run through Flask's CLI test runner."""

from __future__ import annotations

import glob
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from eventory_backend.extensions import db
from eventory_backend.logins import services as logins
from eventory_backend.logins.models import EventoryLogin

from .helpers import (
    ADA,
    BOB,
    EVENTORY_LOGIN,
    FOUR_LOGINS,
    NEW_PASSWORD,
    login_owners,
    register_and_login,
    save_four_logins,
    tamper,
    usernames,
)


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def everything_said(result) -> str:
    return result.output + (result.stderr if result.stderr_bytes is not None else "")


def log_in_status(client, username, password) -> int:
    return client.post("/auth/login", data={"username": username, "password": password}).status_code


# --- users create --------------------------------------------------------------------------------


def test_users_create_reads_the_password_from_stdin_and_the_account_logs_in(make_app):
    app = make_app(REGISTRATION_OPEN=False)

    result = run(app, "users", "create", "Ada", input=ADA["password"] + "\n")

    assert result.exit_code == 0, everything_said(result)
    assert "Ada" in result.output
    assert ADA["password"] not in everything_said(result)
    assert usernames(app) == ["Ada"]
    assert log_in_status(app.test_client(), "ada", ADA["password"]) == 200


@pytest.mark.parametrize("name", ["ada", "ADA", "  Ada  "])
def test_users_create_refuses_a_taken_name_in_any_case(app, name):
    run(app, "users", "create", "ada", input=ADA["password"] + "\n")

    result = run(app, "users", "create", name, input=BOB["password"] + "\n")

    assert result.exit_code != 0
    assert "taken" in everything_said(result)
    assert usernames(app) == ["ada"]
    assert log_in_status(app.test_client(), "ada", ADA["password"]) == 200


@pytest.mark.parametrize(
    ("name", "password", "words"),
    [
        ("carol", "too short", "at least"),
        ("carol", "qazwsxedcrfvtgb", "common"),
        ("carol.lovelace.1815", "carol.lovelace.1815", "must not be the username"),
        ("carol", "", "at least"),
        ("ca", ADA["password"], "username"),
        ("c" * 65, ADA["password"], "username"),
        ("bob role=manage", ADA["password"], "letters, digits and . _ @ -"),
        ('bob"x', ADA["password"], "letters, digits and . _ @ -"),
    ],
    ids=["too-short", "common", "the-username", "empty", "2-char-name", "65-char-name", "spaces-and-equals", "quote"],
)
def test_users_create_enforces_the_password_and_username_rules(app, name, password, words):
    result = run(app, "users", "create", name, input=password + "\n")

    assert result.exit_code != 0
    assert words in everything_said(result).lower()
    assert usernames(app) == []


def test_users_create_follows_the_configured_minimum_length(make_app):
    app = make_app(PASSWORD_MIN_LENGTH=8)

    assert run(app, "users", "create", "carol", input="tulipviolinox\n").exit_code == 0
    assert log_in_status(app.test_client(), "carol", "tulipviolinox") == 200


# --- users list ----------------------------------------------------------------------------------


def test_users_list_shows_every_account(app):
    for who in (ADA, BOB):
        run(app, "users", "create", who["username"], input=who["password"] + "\n")

    result = run(app, "users", "list")

    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert "ada" in lines[0] and "bob" in lines[1]
    assert ADA["password"] not in result.output and "$2b$" not in result.output


def test_users_list_with_no_accounts_succeeds(app):
    result = run(app, "users", "list")

    assert result.exit_code == 0
    assert "ada" not in result.output


# --- users set-password --------------------------------------------------------------------------


def test_users_set_password_changes_it_and_ends_every_token(app, client):
    headers = register_and_login(client, ADA)
    refresh_token = client.post("/auth/login", data=ADA).json["refresh_token"]
    bob = register_and_login(client, BOB)

    result = run(app, "users", "set-password", "ADA", input=NEW_PASSWORD + "\n")

    assert result.exit_code == 0, everything_said(result)
    assert NEW_PASSWORD not in everything_said(result)
    assert client.get("/auth/me", headers=headers).status_code == 401
    assert client.post("/auth/refresh", headers={"Authorization": f"Bearer {refresh_token}"}).status_code == 401
    assert log_in_status(client, "ada", ADA["password"]) == 401
    assert log_in_status(client, "ada", NEW_PASSWORD) == 200
    assert client.get("/auth/me", headers=bob).status_code == 200


def test_users_set_password_enforces_the_policy_and_keeps_the_old_one(app, client):
    headers = register_and_login(client, ADA)

    result = run(app, "users", "set-password", "ada", input="password\n")

    assert result.exit_code != 0
    assert client.get("/auth/me", headers=headers).status_code == 200
    assert log_in_status(client, "ada", ADA["password"]) == 200


def test_users_set_password_of_an_unknown_user_fails(app):
    result = run(app, "users", "set-password", "nobody", input=NEW_PASSWORD + "\n")

    assert result.exit_code != 0
    assert "nobody" in everything_said(result)


# --- users delete --------------------------------------------------------------------------------


def test_users_delete_removes_the_user_their_logins_and_tokens(app, client):
    headers = register_and_login(client, ADA)
    client.post("/logins", json=EVENTORY_LOGIN, headers=headers)
    client.post("/logins", json={**EVENTORY_LOGIN, "label": "Org Two"}, headers=headers)
    bob = register_and_login(client, BOB)
    client.post("/logins", json=EVENTORY_LOGIN, headers=bob)

    result = run(app, "users", "delete", "ada", "--yes")

    assert result.exit_code == 0, everything_said(result)
    assert usernames(app) == ["bob"]
    assert set(login_owners(app)) == {"bob"}
    assert client.get("/auth/me", headers=headers).status_code == 401
    assert log_in_status(client, "ada", ADA["password"]) == 401
    assert len(client.get("/logins", headers=bob).json) == 1


def test_users_delete_without_yes_asks_and_no_keeps_the_account(app, client):
    headers = register_and_login(client, ADA)

    result = run(app, "users", "delete", "ada", input="n\n")

    assert result.exit_code != 0
    assert usernames(app) == ["ada"]
    assert client.get("/auth/me", headers=headers).status_code == 200


def test_users_delete_of_an_unknown_user_fails(app):
    result = run(app, "users", "delete", "nobody", "--yes")

    assert result.exit_code != 0
    assert "nobody" in everything_said(result)


# --- credentials rotate --------------------------------------------------------------------------


def key() -> str:
    return Fernet.generate_key().decode()


def decrypted(app) -> dict[str, str | None]:
    """Every stored login's password as `app`'s keys read it (None: unreadable)."""
    out = {}
    with app.app_context():
        for login in db.session.execute(db.select(EventoryLogin).order_by(EventoryLogin.id)).scalars():
            try:
                out[login.label] = logins.stored_password(login)
            except logins.CredentialError:
                out[login.label] = None
    return out


def test_rotate_re_encrypts_every_login_so_the_old_key_can_go(make_app):
    old, new = key(), key()
    save_four_logins(make_app(CREDENTIALS_KEYS=[old]))

    result = run(make_app(CREDENTIALS_KEYS=[new, old]), "credentials", "rotate")

    assert result.exit_code == 0, everything_said(result)
    assert re.findall(r"\d+", result.output) == ["4", "0"]  # re-encrypted, unreadable
    assert decrypted(make_app(CREDENTIALS_KEYS=[new])) == FOUR_LOGINS
    assert decrypted(make_app(CREDENTIALS_KEYS=[old])) == dict.fromkeys(FOUR_LOGINS)


def test_rotate_never_prints_a_password(make_app):
    old, new = key(), key()
    save_four_logins(make_app(CREDENTIALS_KEYS=[old]))

    result = run(make_app(CREDENTIALS_KEYS=[new, old]), "credentials", "rotate")

    for password in FOUR_LOGINS.values():
        assert password not in everything_said(result)


def test_rotate_works_in_small_batches(make_app):
    old, new = key(), key()
    save_four_logins(make_app(CREDENTIALS_KEYS=[old]))

    result = run(make_app(CREDENTIALS_KEYS=[new, old]), "credentials", "rotate", "--batch-size", "1")

    assert result.exit_code == 0, everything_said(result)
    assert decrypted(make_app(CREDENTIALS_KEYS=[new])) == FOUR_LOGINS


def test_rotate_twice_is_harmless(make_app):
    old, new = key(), key()
    save_four_logins(make_app(CREDENTIALS_KEYS=[old]))
    both = make_app(CREDENTIALS_KEYS=[new, old])
    first = run(both, "credentials", "rotate")

    second = run(both, "credentials", "rotate")

    assert first.exit_code == second.exit_code == 0
    assert first.output == second.output
    assert decrypted(make_app(CREDENTIALS_KEYS=[new])) == FOUR_LOGINS


def test_rotate_leaves_no_password_in_clear_in_the_database_files(make_app, database_url):
    if not database_url.startswith("sqlite:///"):
        pytest.skip("reads the SQLite files")
    old, new = key(), key()
    save_four_logins(make_app(CREDENTIALS_KEYS=[old]))
    assert run(make_app(CREDENTIALS_KEYS=[new, old]), "credentials", "rotate").exit_code == 0

    path = database_url.removeprefix("sqlite:///")
    files = glob.glob(path + "*")
    raw = b"".join(Path(name).read_bytes() for name in files)

    assert files
    for password in FOUR_LOGINS.values():
        assert password.encode() not in raw


@pytest.mark.parametrize(
    "ciphertext",
    ["gAAAAAtampered", Fernet(Fernet.generate_key()).encrypt(b"Org Two").decode()],
    ids=["tampered", "encrypted-under-an-unknown-key"],
)
def test_rotate_reports_an_unreadable_row_by_id_and_label_and_rotates_the_rest(make_app, ciphertext):
    old, new = key(), key()
    ids = save_four_logins(make_app(CREDENTIALS_KEYS=[old]))
    both = make_app(CREDENTIALS_KEYS=[new, old])
    tamper(both, ids["Org Two"], ciphertext)

    result = run(both, "credentials", "rotate")

    assert result.exit_code == 1
    said = everything_said(result)
    assert str(ids["Org Two"]) in said and "Org Two" in said
    assert "Traceback" not in said
    assert decrypted(make_app(CREDENTIALS_KEYS=[new])) == {**FOUR_LOGINS, "Org Two": None}
