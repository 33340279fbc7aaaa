"""Issue 11, token isolation and sign-in amplification: a cached Eventory token serves only the
exact credentials it was signed in with, ids are never reused, rejected credentials are not
tried again, and the number and rate of saved logins are bounded. Against waitress and the eventory
Eventory over real sockets; several processes where the point is about several processes."""

from __future__ import annotations

import threading
import time

import flask_migrate
import requests
from cryptography.fernet import Fernet
from sqlalchemy import text

from eventory_backend.extensions import db, migrate

from .helpers import ADA, BOB, EVENTORY_LOGIN, account, save_login, start_instance

BERT = {"username": "bert@example.com", "password": "eventory-pass-2"}


def _organisation(live_or_url, headers, login_id) -> tuple[int, str | None]:
    url = live_or_url if isinstance(live_or_url, str) else live_or_url.url
    response = requests.get(
        f"{url}/eventory/user-info", headers={**headers, "X-Eventory-Login": str(login_id)}, timeout=30
    )
    return response.status_code, (response.json().get("organizationName") if response.ok else None)


def test_a_login_switched_to_another_account_by_another_instance_never_gets_the_old_token(tmp_path, eventory):
    eventory.add_user(BERT["username"], BERT["password"], "Org Two")
    shared = {
        "BACKEND_DATABASE_URL": f"sqlite:///{(tmp_path / 'shared.db').as_posix()}",
        "BACKEND_SECRET_KEY": "a-shared-secret-key-of-at-least-32-bytes",
        "BACKEND_CREDENTIALS_KEYS": Fernet.generate_key().decode(),
        "BACKEND_EVENTORY_URL": eventory.url,
        "BACKEND_RATELIMIT_ENABLED": "false",
    }
    first, first_url = start_instance(tmp_path, "first", shared)
    second, second_url = start_instance(tmp_path, "second", shared)
    try:
        requests.post(f"{first_url}/auth/register", json=ADA, timeout=30)
        token = requests.post(f"{first_url}/auth/login", data=ADA, timeout=30).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        login_id = requests.post(f"{first_url}/logins", json=EVENTORY_LOGIN, headers=headers, timeout=30).json()["id"]
        assert _organisation(first_url, headers, login_id) == (200, "Org One")  # cached in the first

        changed = requests.put(f"{second_url}/logins/{login_id}", json=BERT, headers=headers, timeout=30)
        assert changed.status_code == 200
        # The first instance was not told; it must still never serve Org One's token for Bert.
        assert _organisation(first_url, headers, login_id) == (200, "Org Two")
        assert eventory.login_count[BERT["username"]] == 1

        session = requests.post(f"{first_url}/logins/{login_id}/session", headers=headers, timeout=30).json()
        assert session["organisation"] == "Org Two"
    finally:
        for process in (first, second):
            process.terminate()
            process.wait(timeout=15)


def test_a_deleted_logins_id_is_never_handed_to_the_next_one_and_serves_nobody(tmp_path, eventory):
    shared = {
        "BACKEND_DATABASE_URL": f"sqlite:///{(tmp_path / 'shared.db').as_posix()}",
        "BACKEND_SECRET_KEY": "a-shared-secret-key-of-at-least-32-bytes",
        "BACKEND_CREDENTIALS_KEYS": Fernet.generate_key().decode(),
        "BACKEND_EVENTORY_URL": eventory.url,
        "BACKEND_RATELIMIT_ENABLED": "false",
    }
    first, first_url = start_instance(tmp_path, "first", shared)
    second, second_url = start_instance(tmp_path, "second", shared)
    try:
        tokens = {}
        for who in (ADA, BOB):
            requests.post(f"{first_url}/auth/register", json=who, timeout=30)
            tokens[who["username"]] = requests.post(f"{first_url}/auth/login", data=who, timeout=30).json()
        ada = {"Authorization": f"Bearer {tokens['ada']['access_token']}"}
        bob = {"Authorization": f"Bearer {tokens['bob']['access_token']}"}
        ada_login = requests.post(f"{first_url}/logins", json=EVENTORY_LOGIN, headers=ada, timeout=30).json()["id"]
        assert _organisation(first_url, ada, ada_login) == (200, "Org One")  # cached in the first

        assert requests.delete(f"{second_url}/logins/{ada_login}", headers=ada, timeout=30).status_code == 204
        bobs = requests.post(
            f"{second_url}/logins", json={**EVENTORY_LOGIN, "password": "wrong-for-bob"}, headers=bob, timeout=30
        ).json()["id"]
        assert bobs > ada_login  # the highest id, deleted, is not handed out again

        for url in (first_url, second_url):
            assert _organisation(url, ada, ada_login)[0] == 404
            assert _organisation(url, bob, ada_login)[0] == 404
            response = requests.post(f"{url}/logins/{ada_login}/session", headers=bob, timeout=30)
            assert response.status_code == 404 and "access_token" not in response.text
    finally:
        for process in (first, second):
            process.terminate()
            process.wait(timeout=15)


def test_a_call_that_read_the_old_credentials_cannot_plant_their_token(live, eventory):
    eventory.add_user(BERT["username"], BERT["password"], "Org Two")
    headers = account(live)
    login_id = save_login(live, headers)
    eventory.login_delay = 1.0
    answers = []

    def brokered() -> None:
        answers.append(_organisation(live, headers, login_id))

    # Both read Anna's credentials; the second waits behind the first's sign-in.
    waiting = [threading.Thread(target=brokered) for _ in range(2)]
    for thread in waiting:
        thread.start()
        time.sleep(0.2)
    assert live.request("PUT", f"/logins/{login_id}", json=BERT, headers=headers).status_code == 200
    for thread in waiting:
        thread.join(timeout=30)
    eventory.login_delay = 0.0
    assert answers == [(200, "Org One"), (200, "Org One")]  # they asked before the change
    assert _organisation(live, headers, login_id) == (200, "Org Two")
    assert live.post(f"/logins/{login_id}/session", headers=headers).json()["organisation"] == "Org Two"


def test_rejected_credentials_are_not_tried_again_until_they_change(live, eventory):
    headers = account(live)
    login_id = save_login(live, headers, password="not-annas-password")
    eventory.reset()
    answers = [
        live.get("/eventory/jobs/list", headers={**headers, "X-Eventory-Login": str(login_id)}) for _ in range(3)
    ]
    answers.append(live.post(f"/logins/{login_id}/session", headers=headers))
    answers += [live.get("/multisite/jobs/list", headers=headers) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [502, 502, 502, 502, 200, 200]
    details = {answer.json()["detail"] for answer in answers[:4]}
    details |= {answer.json()["results"][0]["error"] for answer in answers[4:]}
    assert len(details) == 1 and "rejected" in details.pop()
    assert eventory.login_attempts == 1

    assert live.request("PUT", f"/logins/{login_id}", json={"password": EVENTORY_LOGIN["password"]}, headers=headers)
    assert live.get("/eventory/jobs/list", headers={**headers, "X-Eventory-Login": str(login_id)}).status_code == 200
    assert eventory.login_attempts == 2


def test_a_rejection_is_tried_again_after_the_back_off(make_app, serve, eventory):
    live = serve(make_app(EVENTORY_REJECTION_BACKOFF=1))
    headers = account(live)
    login_id = save_login(live, headers, password="not-annas-password")
    eventory.reset()
    brokered = {**headers, "X-Eventory-Login": str(login_id)}
    assert live.get("/eventory/jobs/list", headers=brokered).status_code == 502
    assert live.get("/eventory/jobs/list", headers=brokered).status_code == 502
    assert eventory.login_attempts == 1
    time.sleep(1.2)
    assert live.get("/eventory/jobs/list", headers=brokered).status_code == 502
    assert eventory.login_attempts == 2


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


def test_writes_to_logins_are_rate_limited_per_user(make_app, serve):
    live = serve(make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGINS_WRITE="3/minute", RATELIMIT_STORAGE_URI="memory://"))
    headers = account(live)
    first = save_login(live, headers)
    assert live.request("PUT", f"/logins/{first}", json={"label": "Renamed"}, headers=headers).status_code == 200
    assert live.request("DELETE", f"/logins/{first}", headers=headers).status_code == 204
    refused = live.post("/logins", json=EVENTORY_LOGIN, headers=headers)
    assert refused.status_code == 429 and "Retry-After" in refused.headers and refused.json()["detail"]
    assert live.get("/logins", headers=headers).json() == []  # nothing was saved
    assert live.get("/logins", headers=headers).status_code == 200  # reads are not writes
    assert live.post("/logins", json=EVENTORY_LOGIN, headers=account(live, BOB)).status_code == 201


def test_a_fan_out_counts_once_per_login_against_the_proxy_limit(make_app, serve, eventory):
    live = serve(make_app(RATELIMIT_ENABLED=True, RATELIMIT_PROXY="5/minute", RATELIMIT_STORAGE_URI="memory://"))
    headers = account(live)
    ids = [save_login(live, headers, label=f"Org {number}") for number in range(3)]
    assert live.get("/multisite/jobs/list", headers=headers).status_code == 200  # 3 of 5
    assert live.get(f"/multisite/jobs/list?logins={ids[0]}", headers=headers).status_code == 200  # 4 of 5
    eventory.reset()
    refused = live.get("/multisite/jobs/list", headers=headers)  # 3 more would pass 5
    assert refused.status_code == 429 and refused.json()["detail"]
    assert eventory.requests == []  # refused before any call to Eventory


def test_the_upgrade_to_never_reused_ids_keeps_every_row_and_reference(make_app):
    app = make_app(AUTO_MIGRATE=False)
    new_login = (
        "INSERT INTO eventory_logins (owner_id, label, username, password_encrypted, color, created_at, updated_at)"
        " VALUES (:owner, :label, 'u', 'c', '#fff', '2026-12-01 00:00:00', '2026-12-01 00:00:00')"
    )
    with app.app_context():
        flask_migrate.upgrade(directory=migrate.directory, revision="0002")  # the schema before ids were kept
        db.session.execute(
            text(
                "INSERT INTO users (username, username_key, password_hash, created_at)"
                " VALUES ('ada', 'ada', 'x', '2026-12-01 00:00:00')"
            )
        )
        owner = db.session.execute(text("SELECT id FROM users")).scalar_one()
        for number in (1, 2, 3):
            db.session.execute(text(new_login), {"owner": owner, "label": f"Org {number}"})
        db.session.commit()
        before = db.session.execute(text("SELECT id, owner_id, label FROM eventory_logins ORDER BY id")).all()
        flask_migrate.upgrade(directory=migrate.directory)
        if db.engine.dialect.name == "sqlite":
            with db.engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # set back on
        assert db.session.execute(text("SELECT id, owner_id, label FROM eventory_logins ORDER BY id")).all() == before
        highest = before[-1][0]
        db.session.execute(text("DELETE FROM eventory_logins WHERE id = :id"), {"id": highest})
        db.session.commit()
    client = app.test_client()
    client.post("/auth/register", json=BOB)
    headers = {"Authorization": "Bearer " + client.post("/auth/login", data=BOB).json["access_token"]}
    assert client.post("/logins", json=EVENTORY_LOGIN, headers=headers).json["id"] > highest  # not handed out again
    with app.app_context():
        db.session.execute(text("DELETE FROM users WHERE id = :id"), {"id": owner})  # references still cascade
        db.session.commit()
        assert db.session.execute(text("SELECT count(*) FROM eventory_logins")).scalar_one() == 1
