"""Saved Eventory logins: CRUD, ownership, encryption at rest, what GET /logins shows (passwords
only when configured; every row even when one cannot be decrypted), and the bad bodies and ids refused."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, select, text

from eventory_backend.auth.models import User
from eventory_backend.extensions import db
from eventory_backend.logins import services
from eventory_backend.logins.crypto import CredentialError
from eventory_backend.logins.models import EventoryLogin, LoginShare
from eventory_backend.logins.schemas import LoginSchema

from .helpers import (
    ADA,
    BOB,
    EVENTORY_LOGIN,
    FOUR_LOGINS,
    HUGE_NUMBER,
    NOT_AN_OBJECT,
    TEN_THOUSAND,
    UNREADABLE_JSON,
    URLENCODED,
    account,
    ada_logins,
    as_json,
    assert_error,
    case,
    form,
    raw,
    read_login,
    register_and_login,
    save_four_logins,
    save_login,
    snapshot,
    tamper,
)


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

    rotated = make_app(CREDENTIALS_KEYS=[new, old])
    with rotated.app_context():
        assert services.stored_password(db.session.get(EventoryLogin, 1)) == "rotate-me-please"
    locked_out = make_app(CREDENTIALS_KEYS=[new])
    with locked_out.app_context():
        with pytest.raises(CredentialError) as caught:
            services.stored_password(db.session.get(EventoryLogin, 1))
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
    with again.app_context():
        assert services.stored_password(db.session.get(EventoryLogin, 1)) == EVENTORY_LOGIN["password"]


def test_deleting_a_user_deletes_their_logins(app, client, ada, database_url):
    add(client, ada)
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


@pytest.mark.parametrize("expose", [False, True], ids=["passwords-hidden", "passwords-exposed"])
def test_logins_are_all_listed_when_one_cannot_be_decrypted(make_app, expose):
    app = make_app(LOGINS_EXPOSE_PASSWORDS=expose)
    ids = save_four_logins(app)
    tamper(app, ids["Org Two"])
    client = app.test_client()
    ada = {"Authorization": "Bearer " + client.post("/auth/login", data=ADA).json["access_token"]}

    response = client.get("/logins", headers=ada)

    assert response.status_code == 200, response.json
    assert [entry["label"] for entry in response.json] == ["Org One", "Org Two", "Org Three"]
    if expose:
        assert {entry["label"]: entry["password"] for entry in response.json} == {
            "Org One": FOUR_LOGINS["Org One"],
            "Org Two": None,
            "Org Three": FOUR_LOGINS["Org Three"],
        }
    else:
        assert all("password" not in entry for entry in response.json)
    assert client.get(f"/logins/{ids['Org Two']}", headers=ada).status_code == 200


# --- bad bodies on create and edit ---------------------------------------------------------------


# One field each; POST sends it on top of a valid login, PUT sends it alone.
FIELD_CASES = [
    ({"label": 42}, "label", "number-label"),
    ({"label": {"text": "Org"}}, "label", "object-label"),
    ({"username": 42}, "username", "number-username"),
    ({"password": ["eventory-pass-1"]}, "password", "list-password"),
    ({"color": True}, "color", "bool-color"),
    ({"color": 0xFFFFFF}, "color", "number-color"),
    ({"label": None}, "label", "null-label"),
    ({"username": None}, "username", "null-username"),
    ({"password": None}, "password", "null-password"),
    ({"color": None}, "color", "null-color"),
    ({"label": "\x00"}, "label", "nul-label"),
    ({"label": "Org\x00One"}, "label", "nul-in-label"),
    ({"label": "\x1b[31mOrg"}, "label", "escape-in-label"),
    ({"label": "Org\nOne"}, "label", "newline-in-label"),
    ({"label": "Org\rOne"}, "label", "carriage-return-in-label"),
    ({"username": "anna\x00@example.com"}, "username", "nul-in-username"),
    ({"username": "anna\n@example.com"}, "username", "newline-in-username"),
    ({"password": "eventory\x00pass"}, "password", "nul-in-password"),
    ({"label": ""}, "label", "empty-label"),
    ({"label": "    "}, "label", "whitespace-only-label"),
    ({"username": ""}, "username", "empty-username"),
    ({"password": ""}, "password", "empty-password"),
    ({"label": "L" * TEN_THOUSAND}, "label", "10000-char-label"),
    ({"username": "u" * TEN_THOUSAND}, "username", "10000-char-username"),
    ({"password": "p" * TEN_THOUSAND}, "password", "10000-char-password"),
    ({"color": "#" + "f" * (TEN_THOUSAND - 1)}, "color", "10000-char-color"),
    ({"label": "L" * 101}, "label", "101-char-label"),
    ({"username": "u" * 255}, "username", "255-char-username"),
    ({"password": "p" * 1025}, "password", "1025-char-password"),
    ({"color": "#fff\n"}, "color", "color-with-trailing-newline"),
    ({"color": "#ffff"}, "color", "color-4-hex-digits"),
    ({"color": "#ff"}, "color", "color-2-hex-digits"),
    ({"color": "#fffffffff"}, "color", "color-9-hex-digits"),
    ({"color": "red"}, "color", "color-name"),
    ({"color": "rgb(256,0,0)"}, "color", "color-rgb-over-255"),
    ({"color": "rgb(-1,0,0)"}, "color", "color-rgb-negative"),
    ({"color": "rgb(0,0,0"}, "color", "color-rgb-unclosed"),
    ({"color": "rgba(0,0,0,2)"}, "color", "color-alpha-over-1"),
    ({"color": "#GGGGGG"}, "color", "color-not-hex"),
    ({"color": "#\uff11\uff12\uff13"}, "color", "color-fullwidth-digits"),
    ({"color": " #fff"}, "color", "color-leading-space"),
    ({"color": "#fff "}, "color", "color-trailing-space"),
    ({"color": ""}, "color", "color-empty"),
    ({"color": "#fff;background:url(x)"}, "color", "color-css-injection"),
    ({"owner_id": 2}, "owner_id", "unknown-field-owner_id"),
    ({"id": 999}, "id", "unknown-field-id"),
    ({"organisation": "Someone Else AB"}, "organisation", "unknown-field-organisation"),
    ({"created_at": "2000-01-01T00:00:00+00:00"}, "created_at", "unknown-field-created_at"),
]


SURROGATE_LABEL = '"label": "Org \\ud800"'
SURROGATE_PASSWORD = '"password": "pass \\udfff word"'


def _with_valid_fields(text_fields: str) -> str:
    base = {key: value for key, value in EVENTORY_LOGIN.items() if f'"{key}"' not in text_fields}
    return json.dumps(base)[:-1] + ", " + text_fields + "}"


def both(kwargs, status, field=None, *, id, put=None):
    """One bad body for POST /logins and PUT /logins/<id> (or a PUT-specific variant)."""
    return pytest.param(kwargs, kwargs if put is None else put, status, field, id=id)


CREATE_AND_EDIT_CASES = [
    *(both(p.values[0], p.values[1], id=p.id) for p in UNREADABLE_JSON + NOT_AN_OBJECT),
    both(raw('{"label": ' + HUGE_NUMBER + "}"), 400, id="5000-digit-label"),
    both(raw('{"label": NaN}'), (400, 422), "label", id="nan-label"),
    both(form(EVENTORY_LOGIN, URLENCODED), (415, 422), id="urlencoded-form"),
    both(form(EVENTORY_LOGIN), (415, 422), id="multipart-form"),
    both(raw(json.dumps(EVENTORY_LOGIN), "text/plain"), (415, 422), id="json-as-text-plain"),
    both(
        raw(_with_valid_fields(SURROGATE_LABEL)),
        (400, 422),
        "label",
        put=raw("{" + SURROGATE_LABEL + "}"),
        id="lone-surrogate-label",
    ),
    both(
        raw(_with_valid_fields(SURROGATE_PASSWORD)),
        (400, 422),
        "password",
        put=raw("{" + SURROGATE_PASSWORD + "}"),
        id="lone-surrogate-password",
    ),
    *(
        both(as_json({**EVENTORY_LOGIN, **fields}), 422, name, put=as_json(fields), id=ident)
        for fields, name, ident in FIELD_CASES
    ),
]


CREATE_ONLY_CASES = [
    case(as_json({}), 422, "label", id="empty-object"),
    case(as_json({k: v for k, v in EVENTORY_LOGIN.items() if k != "password"}), 422, "password", id="missing-password"),
    case(as_json({k: v for k, v in EVENTORY_LOGIN.items() if k != "label"}), 422, "label", id="missing-label"),
]


EDIT_ONLY_CASES = [
    case(as_json({}), 422, id="empty-object"),
    case(as_json({"color": "#abc", "owner_id": 2}), 422, "owner_id", id="valid-field-with-owner_id"),
    case(as_json({"password": "new-secret-9", "id": 999}), 422, "id", id="valid-field-with-id"),
]


@pytest.mark.parametrize(("post_kwargs", "put_kwargs", "status", "field"), CREATE_AND_EDIT_CASES)
def test_bad_login_body_is_refused_on_create_and_edit_and_changes_nothing(
    app, client, ada, ada_login, post_kwargs, put_kwargs, status, field
):
    login_id = ada_login["id"]
    listed = ada_logins(client, ada)
    before = snapshot(app)

    responses = {
        "POST": client.post("/logins", headers=ada, **post_kwargs),
        "PUT": client.put(f"/logins/{login_id}", headers=ada, **put_kwargs),
    }

    assert 500 not in {r.status_code for r in responses.values()}, {m: r.status_code for m, r in responses.items()}
    for response in responses.values():
        assert_error(response, status, field)
    assert snapshot(app) == before
    assert ada_logins(client, ada) == listed


@pytest.mark.parametrize(("kwargs", "status", "field"), CREATE_ONLY_CASES)
def test_incomplete_new_login_is_refused_and_saves_nothing(app, client, ada, ada_login, kwargs, status, field):
    listed = ada_logins(client, ada)
    before = snapshot(app)

    assert_error(client.post("/logins", headers=ada, **kwargs), status, field)

    assert snapshot(app) == before
    assert ada_logins(client, ada) == listed


@pytest.mark.parametrize(("kwargs", "status", "field"), EDIT_ONLY_CASES)
def test_empty_or_owner_changing_edit_is_refused_and_changes_nothing(
    app, client, ada, ada_login, kwargs, status, field
):
    login_id = ada_login["id"]
    unchanged = read_login(client, ada, login_id)
    before = snapshot(app)

    assert_error(client.put(f"/logins/{login_id}", headers=ada, **kwargs), status, field)

    assert snapshot(app) == before
    assert read_login(client, ada, login_id) == unchanged


# --- ids: someone else's, missing, or not an id at all -------------------------------------------


def _send(client, method, path, headers):
    if method == "PUT":
        return client.put(path, json={"label": "Taken over", "color": "#000"}, headers=headers)
    return client.open(path, method=method, headers=headers)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_another_users_login_is_404_like_a_missing_one(app, client, ada, bob, ada_login, method):
    login_id = ada_login["id"]
    unchanged = read_login(client, ada, login_id)
    before = snapshot(app)

    missing = assert_error(_send(client, method, f"/logins/{login_id + 1000}", bob), 404)
    someone_elses = assert_error(_send(client, method, f"/logins/{login_id}", bob), 404)

    assert someone_elses == missing
    assert snapshot(app) == before
    assert read_login(client, ada, login_id) == unchanged
    assert ada_logins(client, bob) == []


ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


# Each builds a path segment from the real id, so a lenient int() would find the login.
BAD_IDS = {
    "arabic-indic-digits": lambda i: quote(str(i).translate(ARABIC_INDIC)),
    "arabic-indic-12": lambda i: quote("١٢"),
    "fullwidth-digits": lambda i: quote(str(i).translate(FULLWIDTH)),
    "twenty-nines": lambda i: "99999999999999999999",
    "two-to-the-63": lambda i: str(2**63),
    "largest-int64-missing": lambda i: str(2**63 - 1),
    "minus-one": lambda i: "-1",
    "negative": lambda i: f"-{i}",
    "plus-sign": lambda i: f"%2B{i}",
    "decimal": lambda i: f"{i}.0",
    "one-point-zero": lambda i: "1.0",
    "hex": lambda i: f"0x{i:x}",
    "hex-one": lambda i: "0x1",
    "exponent": lambda i: f"{i}e0",
    "leading-space": lambda i: f"%20{i}",
    "trailing-nul": lambda i: f"{i}%00",
    "word": lambda i: "first",
}


@pytest.mark.parametrize("make_id", BAD_IDS.values(), ids=BAD_IDS.keys())
def test_login_id_that_is_not_a_plain_int64_is_404(app, client, ada, ada_login, eventory, make_id):
    """On /logins/<id> and on /logins/<id>/session, which would otherwise sign in to Eventory."""
    login_id = ada_login["id"]
    unchanged = read_login(client, ada, login_id)
    before = snapshot(app)
    eventory.reset()

    path = f"/logins/{make_id(login_id)}"
    responses = {method: _send(client, method, path, ada) for method in ("GET", "PUT", "DELETE")}
    responses["POST session"] = client.post(f"{path}/session", headers=ada)

    assert {method: r.status_code for method, r in responses.items()} == dict.fromkeys(responses, 404)
    for response in responses.values():
        assert_error(response, 404)
    assert eventory.requests == []
    assert snapshot(app) == before
    assert read_login(client, ada, login_id) == unchanged


def test_an_account_holds_at_most_the_configured_number_of_logins(make_app, serve):
    live = serve(make_app(MAX_LOGINS_PER_USER=3))
    headers = account(live)
    for number in range(3):
        save_login(live, headers, label=f"Org {number}")
    refused = live.post("/logins", json={**EVENTORY_LOGIN, "label": "One too many"}, headers=headers)
    assert refused.status_code == 409 and "3" in refused.json()["detail"]
    assert [login["label"] for login in live.get("/logins", headers=headers).json()] == ["Org 0", "Org 1", "Org 2"]
    other = account(live, BOB)
    assert live.post("/logins", json=EVENTORY_LOGIN, headers=other).status_code == 201  # per account


# --- the listing: each login as its viewer reaches it -------------------------------------------


def _as_the_schema_sees_it(login: EventoryLogin, viewer: int) -> dict:
    """The login as `viewer` reaches it, built from ORM objects, for LoginSchema to dump."""
    owner = db.session.get(User, login.owner_id)
    share = db.session.execute(select(LoginShare).filter_by(login_id=login.id, grantee_id=viewer)).scalar_one_or_none()
    role = "owner" if share is None else share.role
    return {
        **{column.key: getattr(login, column.key) for column in EventoryLogin.__table__.columns},
        "username": None if role == "use" else login.username,
        "shared": share is not None,
        "owner": owner.username,
        "role": role,
        "share_id": share.id if share is not None else None,
        "logo_url": f"/logins/{login.id}/logo",
    }


def test_the_listing_shows_each_login_as_its_viewer_reaches_it(app, client, ada, bob):
    for number in range(3):
        client.post("/logins", json={**EVENTORY_LOGIN, "label": f"Org {number}", "read_only": number == 2}, headers=ada)
    client.post("/logins", json=EVENTORY_LOGIN, headers=bob)
    for login_id, role in ((1, "use"), (2, "manage")):
        offered = client.post(f"/logins/{login_id}/shares", json={"username": "bob", "role": role}, headers=ada)
        assert client.post(f"/shares/{offered.json['id']}/accept", headers=bob).status_code == 200
    for viewer, headers in ((1, ada), (2, bob)):
        with app.app_context():
            services.set_organisation(1, 1, "Org One")
            usable = services.usable_logins(viewer)
            assert len(usable) == 3
            dumped = LoginSchema(many=True).dump([_as_the_schema_sees_it(login, viewer) for login in usable])
        assert client.get("/logins", headers=headers).json == dumped
