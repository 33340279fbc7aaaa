"""Credential health: every sign-in the broker makes sets the login's `status` and `checked_at`;
POST /logins/<id>/check signs in now; a new username or password is `unknown` again; /multisite
entries carry it as `login_status`, with the logo's address beside it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from eventory_backend.proxy import checks

from .helpers import BOB, EVENTORY_LOGIN, account, assert_error, save_login, snapshot

CAROL = {"username": "carol@example.com", "password": "carols-eventory-pw"}


@pytest.fixture
def carol(eventory):
    """An Eventory user of her own, whose password a test may change on Eventory's side."""
    eventory.add_user(CAROL["username"], CAROL["password"], "Org Carol")
    yield CAROL
    eventory.set_password(CAROL["username"], CAROL["password"])


def _login(live, headers, login_id) -> dict:
    response = live.get(f"/logins/{login_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _checked_at(login: dict) -> datetime:
    return datetime.fromisoformat(login["checked_at"])


def test_a_new_login_is_unknown_and_shows_where_its_logo_is(live, ada):
    login_id = save_login(live, ada)
    for login in (_login(live, ada, login_id), live.get("/logins", headers=ada).json()[0]):
        assert (login["status"], login["checked_at"]) == ("unknown", None)
        assert login["logo_url"] == f"/logins/{login_id}/logo"


def test_health_goes_ok_rejected_and_ok_again_after_a_check(live, eventory, carol):
    headers = account(live)
    login_id = save_login(live, headers, **carol)
    brokered = {**headers, "X-Eventory-Login": str(login_id)}
    before = datetime.now(UTC)

    assert live.get("/eventory/jobs/list", headers=brokered).status_code == 200
    ok = _login(live, headers, login_id)
    assert ok["status"] == "ok" and before <= _checked_at(ok) <= datetime.now(UTC)

    # The password changes on Eventory's side; the next call signs in again and is refused.
    eventory.set_password(carol["username"], "changed on eventory")
    eventory.expire_all_tokens()
    assert live.get("/eventory/jobs/list", headers=brokered).status_code == 502
    rejected = _login(live, headers, login_id)
    assert rejected["status"] == "rejected" and _checked_at(rejected) > _checked_at(ok)
    assert live.get("/logins", headers=headers).json()[0]["status"] == "rejected"

    # Fixed on Eventory's side: the rejection is still remembered, but a check signs in anyway.
    eventory.set_password(carol["username"], carol["password"])
    eventory.reset()
    checked = live.post(f"/logins/{login_id}/check", headers=headers)
    assert checked.status_code == 200, checked.text
    assert checked.json()["status"] == "ok" and _checked_at(checked.json()) > _checked_at(rejected)
    assert checked.json()["updated_at"] == ok["updated_at"]  # the owner's last edit, not the broker's
    assert eventory.login_attempts == 1
    assert live.get("/eventory/jobs/list", headers=brokered).status_code == 200
    assert eventory.login_attempts == 1  # the check's token serves the next call


def test_a_check_reports_a_refusal_and_an_outage_as_the_status(live, ada, eventory, monkeypatch):
    monkeypatch.setattr(checks, "EVERY", 0)  # each check here signs in (test_checks.py has the minute)
    login_id = save_login(live, ada, password="not annas password")
    refused = live.post(f"/logins/{login_id}/check", headers=ada)
    assert refused.status_code == 200 and refused.json()["status"] == "rejected"
    assert "not annas password" not in refused.text

    good = save_login(live, ada, label="Good")
    eventory.outage = "drop"
    down = live.post(f"/logins/{good}/check", headers=ada)
    assert down.status_code == 200 and down.json()["status"] == "unreachable"
    eventory.outage = 503
    assert live.post(f"/logins/{good}/check", headers=ada).json()["status"] == "unreachable"
    eventory.outage = None
    assert live.post(f"/logins/{good}/check", headers=ada).json()["status"] == "ok"


def test_a_new_password_or_username_is_unknown_again_and_a_new_label_is_not(live, ada):
    login_id = save_login(live, ada)
    assert live.post(f"/logins/{login_id}/check", headers=ada).json()["status"] == "ok"
    renamed = live.request("PUT", f"/logins/{login_id}", json={"label": "Renamed", "color": "#000"}, headers=ada)
    assert renamed.json()["status"] == "ok"
    for change in ({"password": EVENTORY_LOGIN["password"]}, {"username": "someone@example.com"}):
        assert live.post(f"/logins/{login_id}/check", headers=ada).status_code == 200
        changed = live.request("PUT", f"/logins/{login_id}", json=change, headers=ada).json()
        assert (changed["status"], changed["checked_at"]) == ("unknown", None)


def test_a_sign_in_with_credentials_changed_meanwhile_does_not_mark_the_new_ones(live, ada, eventory):
    login_id = save_login(live, ada)
    eventory.login_delay = 1.0
    checking = threading.Thread(target=live.post, args=(f"/logins/{login_id}/check",), kwargs={"headers": ada})
    checking.start()
    try:
        threading.Event().wait(0.3)  # the check has read the old credentials and is signing in
        changed = live.request("PUT", f"/logins/{login_id}", json={"password": "a new one"}, headers=ada)
        assert changed.status_code == 200
    finally:
        checking.join(timeout=30)
    assert _login(live, ada, login_id)["status"] == "unknown"


@pytest.mark.parametrize("login_id", ["999999", "abc", "-1"])
def test_checking_a_missing_or_malformed_login_is_404_and_changes_nothing(app, client, ada, eventory, login_id):
    before = snapshot(app)
    assert_error(client.post(f"/logins/{login_id}/check", headers=ada), 404)
    assert snapshot(app) == before
    assert eventory.login_attempts == 0


def test_checking_another_users_login_is_404_and_changes_nothing(app, live, eventory):
    ada = account(live)
    login_id = save_login(live, ada)
    bob = account(live, BOB)
    before = snapshot(app)
    response = live.post(f"/logins/{login_id}/check", headers=bob)
    assert response.status_code == 404 and isinstance(response.json()["detail"], str)
    assert snapshot(app) == before
    assert eventory.login_attempts == 0


def test_multisite_entries_carry_the_login_status_and_logo_url(live, ada, eventory):
    good = save_login(live, ada)
    bad = save_login(live, ada, label="Org B", password="expired password")
    results = live.get("/multisite/jobs/list", headers=ada).json()["results"]
    assert [(entry["login_id"], entry["status"], entry["login_status"]) for entry in results] == [
        (good, 200, "ok"),
        (bad, None, "rejected"),
    ]
    assert [entry["logo_url"] for entry in results] == [f"/logins/{good}/logo", f"/logins/{bad}/logo"]
