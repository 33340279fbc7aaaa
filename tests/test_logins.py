"""Saved Eventory logins: CRUD, ownership, encryption at rest."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from .helpers import ADA, BOB, EVENTORY_LOGIN, account, register_and_login, save_login


def add(client, headers, **fields):
    response = client.post("/logins", json={**EVENTORY_LOGIN, **fields}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def raw_rows(database_url: str) -> list[tuple]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM eventory_logins")).fetchall()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_add_list_edit_delete(client, ada):
    created = add(client, ada)
    assert created["label"] == "Org One" and created["color"] == "#ff0000"
    assert "password" not in created

    second = add(client, ada, label="Org Two", color="rgba(10, 20, 30, 0.5)")
    listed = client.get("/logins", headers=ada).json
    assert [login["id"] for login in listed] == [created["id"], second["id"]]
    assert all("password" not in login and "password_encrypted" not in login for login in listed)

    edited = client.put(f"/logins/{created['id']}", json={"color": "#abc", "password": "new-secret-9"}, headers=ada)
    assert edited.status_code == 200
    assert edited.json["color"] == "#abc" and edited.json["label"] == "Org One"
    assert edited.json["updated_at"] >= created["updated_at"]

    assert client.delete(f"/logins/{created['id']}", headers=ada).status_code == 204
    assert [login["id"] for login in client.get("/logins", headers=ada).json] == [second["id"]]
    assert client.delete(f"/logins/{created['id']}", headers=ada).status_code == 404


def test_list_shows_each_login_as_get_shows_it(client, ada):
    """GET /logins builds its answer without the schema; it must still say what GET /logins/<id>
    (the schema's dump) says, field for field, timestamps included, and in the order saved."""
    first = add(client, ada)
    second = add(client, ada, label="Org Two", color="#00ff00")
    client.put(f"/logins/{second['id']}", json={"label": "Org Two, renamed"}, headers=ada)
    listed = client.get("/logins", headers=ada)
    assert listed.status_code == 200 and listed.content_type == "application/json"
    one_by_one = [client.get(f"/logins/{login['id']}", headers=ada).json for login in (first, second)]
    assert listed.json == one_by_one
    assert listed.json[1]["label"] == "Org Two, renamed"
    assert listed.json[1]["updated_at"] != listed.json[1]["created_at"]


def test_colour_defaults_to_the_frontends_blue(client, ada):
    fields = {key: value for key, value in EVENTORY_LOGIN.items() if key != "color"}
    assert client.post("/logins", json=fields, headers=ada).json["color"] == "#1976d2"


@pytest.mark.parametrize(
    "color", ["#abc", "#A1B2C3", "#a1b2c3d4", "rgb(0,0,0)", "rgb(255, 255, 255)", "rgba(1, 2, 3, 0.25)"]
)
def test_css_colours_are_accepted(client, ada, color):
    assert add(client, ada, color=color)["color"] == color


def test_users_never_see_each_others_logins(client, ada, bob):
    mine = add(client, ada)
    assert client.get("/logins", headers=bob).json == []
    missing = client.get("/logins/999999", headers=bob)
    for method in ("get", "put", "delete"):
        kwargs = {"json": {"label": "stolen"}} if method == "put" else {}
        response = getattr(client, method)(f"/logins/{mine['id']}", headers=bob, **kwargs)
        assert response.status_code == 404
        assert response.json == missing.json
    assert client.get(f"/logins/{mine['id']}", headers=ada).json["label"] == "Org One"


def test_database_never_holds_the_password_in_clear(app, client, ada, database_url):
    add(client, ada, password="Very-Secret-Eventory-Password")
    client.put("/logins/1", json={"password": "Changed-Eventory-Password"}, headers=ada)
    for row in raw_rows(database_url):
        assert not any("Secret-Eventory" in str(value) or "Changed-Eventory" in str(value) for value in row)
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path)) as connection:
            connection.execute("PRAGMA wal_checkpoint(FULL)")
        with open(path, "rb") as handle:
            raw = handle.read()
        assert b"Changed-Eventory-Password" not in raw and b"Very-Secret-Eventory-Password" not in raw
        assert b"anna@example.com" in raw  # the file was really read


def test_password_decrypts_with_the_configured_keys(make_app):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = make_app(CREDENTIALS_KEYS=[old])
    client = first.test_client()
    headers = register_and_login(client, ADA)
    add(client, headers, password="rotate-me-please")

    from eventory_backend.logins import services
    from eventory_backend.logins.crypto import CredentialError

    rotated = make_app(CREDENTIALS_KEYS=[new, old])
    with rotated.app_context():
        assert services.stored_password(services.get_login(1, 1)) == "rotate-me-please"
    locked_out = make_app(CREDENTIALS_KEYS=[new])
    with locked_out.app_context():
        with pytest.raises(CredentialError) as caught:
            services.stored_password(services.get_login(1, 1))
        assert "rotate-me-please" not in str(caught.value)


def test_generated_credentials_key_is_kept_in_the_instance_folder(make_app, tmp_path):
    app = make_app()
    key_file = tmp_path / "instance" / "credentials.key"
    assert key_file.exists()
    Fernet(key_file.read_text().strip().encode())
    if os.name == "posix":
        assert key_file.stat().st_mode & 0o077 == 0
    client = app.test_client()
    headers = register_and_login(client, ADA)
    add(client, headers)
    again = make_app()  # a restart reads the same key
    from eventory_backend.logins import services

    with again.app_context():
        assert services.stored_password(services.get_login(1, 1)) == EVENTORY_LOGIN["password"]


def test_deleting_a_user_deletes_their_logins(app, client, ada, database_url):
    add(client, ada)
    from eventory_backend.auth.models import User
    from eventory_backend.extensions import db

    with app.app_context():
        db.session.delete(db.session.get(User, 1))
        db.session.commit()
    assert raw_rows(database_url) == []


def test_passwords_are_exposed_only_when_configured(make_app, serve, eventory):
    default = serve(make_app())
    headers = account(default)
    save_login(default, headers)
    assert "password" not in default.get("/logins", headers=headers).json()[0]

    exposing = serve(make_app(LOGINS_EXPOSE_PASSWORDS=True))
    assert exposing.get("/logins", headers=headers).json()[0]["password"] == EVENTORY_LOGIN["password"]
    bob = account(exposing, BOB)
    assert exposing.get("/logins", headers=bob).json() == []
    assert "password" not in exposing.get("/logins/1", headers=headers).json()
