"""POST /logins/<id>/check (issue 27): for the login's owner and its managers only, and at most one
sign-in a minute per credentials; inside that minute the answer is the login's last recorded
status and `checked_at`, however many checks are sent. Through waitress and the fake Eventory."""

from __future__ import annotations

import time
from datetime import datetime

from eventory_backend.proxy import checks

from .helpers import ADA, BOB, EVENTORY_LOGIN, account, save_login, snapshot

CAROL = {"username": "carol", "password": "punched cards for the loom"}


def invite(live, owner, login_id, username, role="use") -> dict:
    response = live.post(f"/logins/{login_id}/shares", json={"username": username, "role": role}, headers=owner)
    assert response.status_code == 201, response.text
    return response.json()


def share(live, owner, login_id, grantee, username, role="use") -> dict:
    """Share the login with `username`, who accepts it with their headers `grantee`; the share."""
    invitation = invite(live, owner, login_id, username, role)
    accepted = live.post(f"/shares/{invitation['id']}/accept", headers=grantee)
    assert accepted.status_code == 200, accepted.text
    return invitation


def check(live, headers, login_id) -> dict:
    response = live.post(f"/logins/{login_id}/check", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def recorded(live, headers, login_id) -> tuple[str, str | None]:
    """The login's status and checked_at as GET /logins/<id> shows them."""
    login = live.get(f"/logins/{login_id}", headers=headers).json()
    return login["status"], login["checked_at"]


def sign_ins(eventory) -> int:
    """Sign-ins Eventory received (a dropped connection is one too)."""
    return eventory.calls("/login-json")


def test_a_hundred_checks_of_a_rejected_password_send_it_to_eventory_once(live, ada, eventory):
    login_id = save_login(live, ada, password="wrong")
    answers = [live.post(f"/logins/{login_id}/check", headers=ada) for _ in range(100)]
    assert [answer.status_code for answer in answers] == [200] * 100
    assert {answer.json()["status"] for answer in answers} == {"rejected"}
    assert {answer.json()["checked_at"] for answer in answers} == {recorded(live, ada, login_id)[1]}
    assert eventory.login_attempts == 1
    assert all("wrong" not in answer.text for answer in answers)


def test_a_use_grantee_may_not_check_and_a_manager_may(app, live, eventory):
    ada, bob, carol = account(live, ADA), account(live, BOB), account(live, CAROL)
    login_id = save_login(live, ada)
    share(live, ada, login_id, bob, "bob")
    share(live, ada, login_id, carol, "carol", "manage")
    before = snapshot(app)
    refused = live.post(f"/logins/{login_id}/check", headers=bob)
    assert refused.status_code == 403 and "owner and its managers" in refused.json()["detail"]
    assert eventory.login_attempts == 0 and snapshot(app) == before
    checked = check(live, carol, login_id)
    assert checked["status"] == "ok" and checked["role"] == "manage"
    assert eventory.login_attempts == 1
    assert check(live, ada, login_id)["checked_at"] == checked["checked_at"]  # the same credentials, within the minute
    assert eventory.login_attempts == 1


def test_an_invitation_not_yet_accepted_cannot_check(live, eventory):
    ada, bob = account(live, ADA), account(live, BOB)
    login_id = save_login(live, ada)
    invite(live, ada, login_id, "bob", "manage")
    pending = live.post(f"/logins/{login_id}/check", headers=bob)
    assert pending.status_code == 404 and pending.json()["detail"]
    assert eventory.login_attempts == 0


def test_within_the_minute_a_check_answers_the_last_recorded_status(live, ada, eventory):
    login_id = save_login(live, ada)
    eventory.outage = "drop"
    down = check(live, ada, login_id)
    assert down["status"] == "unreachable" and down["checked_at"] is not None
    eventory.outage = None
    brokered = live.get("/eventory/jobs/list", headers={**ada, "X-Eventory-Login": str(login_id)})
    assert brokered.status_code == 200  # the broker signs in: the login is marked ok
    status, checked_at = recorded(live, ada, login_id)
    assert status == "ok" and checked_at != down["checked_at"]
    eventory.reset()
    again = check(live, ada, login_id)
    assert (again["status"], again["checked_at"]) == ("ok", checked_at)
    assert sign_ins(eventory) == 0


def test_a_new_password_is_checked_at_once(live, ada, eventory):
    login_id = save_login(live, ada, password="wrong")
    assert check(live, ada, login_id)["status"] == "rejected"
    changed = live.request("PUT", f"/logins/{login_id}", json={"password": EVENTORY_LOGIN["password"]}, headers=ada)
    assert changed.status_code == 200 and changed.json()["status"] == "unknown"
    fixed = check(live, ada, login_id)
    assert fixed["status"] == "ok" and fixed["checked_at"] is not None
    assert eventory.login_attempts == 2
    assert check(live, ada, login_id)["checked_at"] == fixed["checked_at"]
    assert eventory.login_attempts == 2  # the new credentials are in their minute now


def test_after_the_minute_a_check_signs_in_again(live, ada, eventory, monkeypatch):
    login_id = save_login(live, ada)
    first = check(live, ada, login_id)
    assert check(live, ada, login_id)["checked_at"] == first["checked_at"]
    assert eventory.login_attempts == 1
    monkeypatch.setattr(checks, "EVERY", 0.1)
    time.sleep(0.15)
    later = check(live, ada, login_id)
    assert later["status"] == "ok"
    assert datetime.fromisoformat(later["checked_at"]) > datetime.fromisoformat(first["checked_at"])
    assert eventory.login_attempts == 2


def test_the_memory_of_recent_checks_keeps_only_the_newest(monkeypatch):
    monkeypatch.setattr(checks, "KEPT", 3)
    recent = checks.RecentChecks()
    keys = [bytes([number]) * 32 for number in range(5)]
    assert [recent.claim(key) for key in keys] == [True] * 5
    assert len(recent) == 3
    assert recent.claim(keys[4]) is False and recent.claim(keys[2]) is False
    assert recent.claim(keys[0]) is True  # forgotten: it may sign in again
    assert len(recent) == 3
