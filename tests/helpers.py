"""Plain helpers shared by the test modules: the test accounts, shortcuts for their requests, the
building blocks of the bad-input tables with the checks every refusal must pass, and `python wsgi.py`
started as production runs it. No fixtures here; those are in conftest.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select, text

from eventory_backend.auth.models import User
from eventory_backend.extensions import db
from eventory_backend.logins.models import EventoryLogin

from . import services

ROOT = Path(__file__).resolve().parent.parent

ADA = {"username": "ada", "password": "analytical engine notes"}
BOB = {"username": "bob", "password": "difference engine sketches"}
EVENTORY_LOGIN = {"label": "Org One", "username": "anna@example.com", "password": "eventory-pass-1", "color": "#ff0000"}
NEW_PASSWORD = "a brand new passphrase for ada"


# --- accounts, through the test client -----------------------------------------------------------


def register_and_login(client, account) -> dict:
    """Register `account` through the test client and log in: its bearer headers."""
    response = client.post("/auth/register", json=account)
    assert response.status_code == 201, response.json
    token = client.post("/auth/login", data=account).json["access_token"]
    return {"Authorization": f"Bearer {token}"}


def log_in(client, who=ADA) -> dict:
    """A fresh login's whole answer (access and refresh token)."""
    response = client.post("/auth/login", data=who)
    assert response.status_code == 200, response.json
    return response.json


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def bear(session: dict) -> dict:
    return bearer(session["access_token"])


def me_status(client, token: str) -> int:
    return client.get("/auth/me", headers=bearer(token)).status_code


def refresh(client, refresh_token: str):
    return client.post("/auth/refresh", headers=bearer(refresh_token))


def assert_401(response):
    assert response.status_code == 401, (response.status_code, response.json)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert isinstance(response.json["detail"], str) and response.json["detail"]


# --- saved Eventory logins, through the test client ----------------------------------------------


def ada_logins(client, headers) -> list[dict]:
    response = client.get("/logins", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def read_login(client, headers, login_id) -> dict:
    response = client.get(f"/logins/{login_id}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


# Ada's three saved logins and Bob's one: label -> Eventory password.
FOUR_LOGINS = {
    "Org One": "eventory-pass-1",
    "Org Two": "second-secret-pw",
    "Org Three": "third-secret-pw",
    "Bob Org": "bobs-secret-pw",
}


def save_four_logins(app) -> dict[str, int]:
    """Ada's three logins and Bob's one, saved through the API; their ids by label."""
    client = app.test_client()
    ada, bob = register_and_login(client, ADA), register_and_login(client, BOB)
    ids = {}
    for label, password in FOUR_LOGINS.items():
        owner = bob if label == "Bob Org" else ada
        response = client.post("/logins", json={**EVENTORY_LOGIN, "label": label, "password": password}, headers=owner)
        assert response.status_code == 201, response.json
        ids[label] = response.json["id"]
    return ids


def tamper(app, login_id: int, ciphertext: str = "gAAAAAtampered") -> None:
    """Overwrite a saved login's stored ciphertext in the database."""
    with app.app_context():
        db.session.execute(
            text("UPDATE eventory_logins SET password_encrypted = :value WHERE id = :id"),
            {"value": ciphertext, "id": login_id},
        )
        db.session.commit()


# --- on a live server ----------------------------------------------------------------------------


def account(live, who=ADA) -> dict:
    """Register `who` on a live server (if not yet there) and log in: bearer headers."""
    live.post("/auth/register", json=who)
    token = live.post("/auth/login", data=who).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def save_login(live, headers, **fields) -> int:
    """Save EVENTORY_LOGIN (with `fields` changed) on a live server: the new login's id."""
    response = live.post("/logins", json={**EVENTORY_LOGIN, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


# --- bad inputs ----------------------------------------------------------------------------------


TEN_THOUSAND = 10_000
DEEP_JSON = "[" * 100_000 + "]" * 100_000
HUGE_NUMBER = "9" * 5_000  # past Python's 4,300-digit int parsing limit
URLENCODED = "application/x-www-form-urlencoded"


def raw(body, content_type="application/json"):
    """Request keyword arguments for a body sent exactly as given."""
    return {"data": body, "content_type": content_type}


def as_json(value):
    return {"json": value}


def form(fields, content_type="multipart/form-data"):
    return {"data": dict(fields), "content_type": content_type}


def case(kwargs, status, field=None, *, id):
    return pytest.param(kwargs, status, field, id=id)


UNREADABLE_JSON = [
    case(raw('{"username": "ada", "password": '), 400, id="truncated-json"),
    case(raw('{"username": "ada",}'), 400, id="trailing-comma"),
    case(raw("{'username': 'ada'}"), 400, id="single-quotes"),
    case(raw(b'{"username": "\xff\xfe", "password": "\xc3"}'), 400, id="invalid-utf8"),
    case(raw(DEEP_JSON), 400, id="100000-deep-nesting"),
    case(raw('{"username": ' + HUGE_NUMBER + "}"), 400, id="5000-digit-number"),
    case(raw(""), (400, 422), id="empty-body"),
]


NOT_AN_OBJECT = [
    case(as_json([]), 422, id="empty-array"),
    case(raw(json.dumps([ADA, EVENTORY_LOGIN])), 422, id="array-of-objects"),
    case(raw('"ada"'), 422, id="string"),
    case(raw("42"), 422, id="number"),
    case(raw("null"), 422, id="null"),
    case(raw("true"), 422, id="true"),
]


def assert_error(response, status, field=None):
    """A 4xx with the one error shape; `status` is one code or a tuple of acceptable codes."""
    allowed = status if isinstance(status, tuple) else (status,)
    assert response.status_code != 500, response.get_data(as_text=True)[:500]
    assert response.status_code in allowed, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == "application/json", response.mimetype
    body = response.get_json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("detail"), str) and body["detail"].strip(), body
    assert "Traceback" not in body["detail"]
    assert "msg" not in body, body
    if response.status_code == 401:
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), dict(response.headers)
    if response.status_code == 405:
        assert response.headers.get("Allow"), dict(response.headers)
    if response.status_code == 422:
        errors = body.get("errors")
        assert isinstance(errors, dict) and errors, body
        assert all(isinstance(name, str) for name in errors), errors
        assert all(
            isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages)
            for messages in errors.values()
        ), errors
        if field is not None:
            assert field in errors, (field, errors)
    return body


def snapshot(app) -> dict[str, list[tuple]]:
    """Every row of every table, to prove a rejected request changed nothing."""
    with app.app_context():
        with db.engine.connect() as connection:
            return {
                table.name: sorted((tuple(row) for row in connection.execute(select(table))), key=repr)
                for table in db.metadata.sorted_tables
            }


# --- the app and its database -------------------------------------------------------------------


def app_with_a_crashing_route(make_app):
    """An app with GET /boom, which raises; the crash is answered (a 500), not propagated."""
    app = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    return app


def usernames(app) -> list[str]:
    """Every account's username, oldest first."""
    with app.app_context():
        return list(db.session.execute(db.select(User.username).order_by(User.id)).scalars())


def login_owners(app) -> list[str | None]:
    """The owner's username of every saved Eventory login, in saved order (None: no such user)."""
    query = (
        db.select(User.username)
        .select_from(EventoryLogin)
        .outerjoin(User, User.id == EventoryLogin.owner_id)
        .order_by(EventoryLogin.id)
    )
    with app.app_context():
        return list(db.session.execute(query).scalars())


def app_whose_database_is_gone(make_app, tmp_path):
    """A working app, then its SQLite file's folder removed: every new connection fails."""
    folder = tmp_path / "database"
    folder.mkdir()
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{(folder / 'gone.db').as_posix()}")
    with app.app_context():
        db.engine.dispose()
    shutil.rmtree(folder)
    return app


# --- processes and ports -------------------------------------------------------------------------


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    return services.free_port()


def start_instance(tmp_path: Path, name: str, environment: dict) -> tuple[subprocess.Popen, str]:
    """`python wsgi.py` as production runs it, with only the given BACKEND_* settings; its
    stderr goes to `<tmp_path>/<name>.log`. Returns the process and its URL once it answers."""
    port = services.free_port()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("BACKEND_")},
        **environment,
        "PYTHON_DOTENV_DISABLED": "1",
        "BACKEND_INSTANCE_PATH": str(tmp_path / name),
        "BACKEND_PORT": str(port),
    }
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "wsgi.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url + "/openapi.json", timeout=2)
            return process, url
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(log_path.read_text()) from None
            time.sleep(0.2)


# --- concurrency ---------------------------------------------------------------------------------


def at_once(count: int, call) -> list:
    """`call(number)` in `count` threads released together; the results in number order (an
    exception a call raised is its result)."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(number: int) -> None:
        barrier.wait()
        try:
            results[number] = call(number)
        except Exception as error:  # noqa: BLE001 - the test decides what a failure means
            results[number] = error

    threads = [threading.Thread(target=run, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def eventually(check, seconds: float = 5.0):
    """`check()`'s result once it stops failing its assertions, trying for up to `seconds`: for
    what the server does just after a client has its answer (a streamed answer's access line)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
