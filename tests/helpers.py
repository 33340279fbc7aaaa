"""Plain helpers shared by the test modules: the test accounts, shortcuts for their requests, and
`python wsgi.py` started as production runs it. No fixtures here; those are in conftest.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

from eventory_backend.extensions import db

from . import services

ROOT = Path(__file__).resolve().parent.parent

ADA = {"username": "ada", "password": "analytical engine notes"}
BOB = {"username": "bob", "password": "difference engine sketches"}
EVENTORY_LOGIN = {"label": "Org One", "username": "anna@example.com", "password": "eventory-pass-1", "color": "#ff0000"}
NEW_PASSWORD = "a brand new passphrase for ada"
DEEP_JSON = "[" * 100_000 + "]" * 100_000


def raw(body, content_type="application/json"):
    """Request keyword arguments for a body sent exactly as given."""
    return {"data": body, "content_type": content_type}


# --- accounts ------------------------------------------------------------------------------------


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


# --- the database --------------------------------------------------------------------------------


def app_whose_database_is_gone(make_app, tmp_path):
    """A working app, then its SQLite file's folder removed: every new connection fails."""
    folder = tmp_path / "database"
    folder.mkdir()
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{(folder / 'gone.db').as_posix()}")
    with app.app_context():
        db.engine.dispose()
    shutil.rmtree(folder)
    return app


# --- processes -----------------------------------------------------------------------------------


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
