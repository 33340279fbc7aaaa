"""GET /logins/<id>/logo: the organisation's logo, read from Eventory with the login and kept a
day per login: ETag, Cache-Control: private, max-age=86400, If-None-Match answered 304 without
asking Eventory; read again after a change of credentials. A failed fetch is remembered for ten
minutes per credentials and answered from memory (issue 27); every call counts against the proxy
limit."""

from __future__ import annotations

import time

import pytest

from eventory_backend.proxy import logos
from eventory_backend.proxy.errors import EventoryUnavailable

from .fake_eventory import LOGO_BYTES
from .helpers import BOB, EVENTORY_LOGIN, account, assert_error, save_login, snapshot

DOWN = (500, b"Internal Server Error", "text/plain")
HTML = (200, b"<!doctype html><title>Sign in</title>", "text/html; charset=utf-8")
TOO_LARGE = (200, b"\x89PNG\r\n\x1a\n" + b"\0" * (logos.LARGEST + 1 - 8), "image/png")  # 1 MiB + 1 byte


def test_the_logo_is_served_with_an_etag_and_kept_a_day(live, ada, eventory):
    login_id = save_login(live, ada)
    logo_url = live.get("/logins", headers=ada).json()[0]["logo_url"]
    first = live.get(logo_url, headers=ada)
    assert first.status_code == 200 and first.content == LOGO_BYTES
    assert first.headers["Content-Type"] == "image/png"
    assert first.headers["Cache-Control"] == "private, max-age=86400"
    assert first.headers["ETag"].startswith('"') and first.headers["Content-Security-Policy"] == "sandbox"
    assert eventory.calls("/logo") == 1

    again = live.get(f"/logins/{login_id}/logo", headers=ada)
    assert again.content == LOGO_BYTES and again.headers["ETag"] == first.headers["ETag"]
    unchanged = live.get(f"/logins/{login_id}/logo", headers={**ada, "If-None-Match": first.headers["ETag"]})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["ETag"] == first.headers["ETag"]
    assert unchanged.headers["Cache-Control"] == "private, max-age=86400"
    assert eventory.calls("/logo") == 1  # neither asked Eventory again

    other = live.get(f"/logins/{login_id}/logo", headers={**ada, "If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == LOGO_BYTES
    assert eventory.calls("/logo") == 1


def test_a_matching_etag_after_a_restart_is_304_after_one_call(make_app, serve, eventory):
    first = serve(make_app())
    headers = account(first)
    login_id = save_login(first, headers)
    etag = first.get(f"/logins/{login_id}/logo", headers=headers).headers["ETag"]
    restarted = serve(make_app())  # the same database, nothing kept in memory
    eventory.reset()
    answer = restarted.get(f"/logins/{login_id}/logo", headers={**headers, "If-None-Match": etag})
    assert answer.status_code == 304 and eventory.calls("/logo") == 1


def test_a_change_of_credentials_reads_the_logo_again_and_a_label_does_not(live, ada, eventory):
    login_id = save_login(live, ada)
    live.get(f"/logins/{login_id}/logo", headers=ada)
    live.request("PUT", f"/logins/{login_id}", json={"label": "Renamed"}, headers=ada)
    live.get(f"/logins/{login_id}/logo", headers=ada)
    assert eventory.calls("/logo") == 1
    live.request("PUT", f"/logins/{login_id}", json={"password": EVENTORY_LOGIN["password"]}, headers=ada)
    assert live.get(f"/logins/{login_id}/logo", headers=ada).content == LOGO_BYTES
    assert eventory.calls("/logo") == 2


def test_a_logo_due_for_a_refresh_is_still_served_while_eventory_is_down(live, ada, eventory, monkeypatch):
    monkeypatch.setattr(logos, "MAX_AGE", 0)  # every logo is due: each call asks Eventory
    login_id = save_login(live, ada)
    never_read = save_login(live, ada, label="Never read")
    assert live.get(f"/logins/{login_id}/logo", headers=ada).status_code == 200
    assert live.get(f"/logins/{login_id}/logo", headers=ada).status_code == 200
    assert eventory.calls("/logo") == 2
    eventory.outage = "drop"
    assert live.get(f"/logins/{login_id}/logo", headers=ada).content == LOGO_BYTES
    down = live.get(f"/logins/{never_read}/logo", headers=ada)
    assert down.status_code == 502 and isinstance(down.json()["detail"], str)


def test_refused_credentials_are_a_502_that_names_them(live, ada, eventory):
    login_id = save_login(live, ada, password="not annas password")
    answer = live.get(f"/logins/{login_id}/logo", headers=ada)
    assert answer.status_code == 502 and "rejected" in answer.json()["detail"]
    assert "not annas password" not in answer.text


@pytest.mark.parametrize("login_id", ["999999", "abc", "-1"])
def test_a_missing_or_malformed_login_is_404_and_changes_nothing(app, client, ada, eventory, login_id):
    before = snapshot(app)
    assert_error(client.get(f"/logins/{login_id}/logo", headers=ada), 404)
    assert snapshot(app) == before and eventory.requests == []


def test_another_users_logo_is_404_without_asking_eventory(live, eventory):
    ada = account(live)
    login_id = save_login(live, ada)
    live.get(f"/logins/{login_id}/logo", headers=ada)
    bob = account(live, BOB)
    eventory.reset()
    answer = live.get(f"/logins/{login_id}/logo", headers=bob)
    assert answer.status_code == 404 and LOGO_BYTES not in answer.content
    assert eventory.requests == []


def test_the_logo_needs_a_backend_token(live, ada):
    login_id = save_login(live, ada)
    assert live.get(f"/logins/{login_id}/logo").status_code == 401


# --- failed fetches, remembered (issue 27) -------------------------------------------------------

FAILED_FETCHES = [
    pytest.param({"logo": DOWN}, {}, 502, "answered 500", id="eventory-error"),
    pytest.param({"logo": (404, b'{"detail": "Not Found"}', "application/json")}, {}, 404, "no logo", id="no-logo"),
    pytest.param({"logo": HTML}, {}, 502, "not an image", id="not-an-image"),
    pytest.param({"logo": TOO_LARGE}, {}, 502, "larger than 1 MiB", id="over-1-mib"),
    pytest.param({"delay": 1.0}, {"PROXY_READ_TIMEOUT": 0.5}, 504, "in time", id="too-slow"),
]


@pytest.mark.parametrize(("eventory_plays", "settings", "status", "says"), FAILED_FETCHES)
def test_a_failed_fetch_is_answered_from_memory_without_asking_eventory_again(
    make_app, serve, eventory, eventory_plays, settings, status, says
):
    live = serve(make_app(**settings))
    headers = account(live)
    login_id = save_login(live, headers)
    for name, value in eventory_plays.items():
        setattr(eventory, name, value)
    answers = [live.get(f"/logins/{login_id}/logo", headers=headers) for _ in range(30)]
    assert [answer.status_code for answer in answers] == [status] * 30
    details = {answer.json()["detail"] for answer in answers}
    assert len(details) == 1 and says in details.pop()
    assert all(answer.headers["Content-Type"] == "application/json" for answer in answers)
    assert eventory.calls("/logo") == 1  # not 30 (nor 30 MiB read)


def test_eventory_is_asked_again_once_the_memory_of_a_failure_has_passed(live, ada, eventory, monkeypatch):
    monkeypatch.setattr(logos, "FAILURE_MEMORY", 0.4)
    login_id = save_login(live, ada)
    eventory.logo = DOWN
    assert live.get(f"/logins/{login_id}/logo", headers=ada).status_code == 502
    assert live.get(f"/logins/{login_id}/logo", headers=ada).status_code == 502
    assert eventory.calls("/logo") == 1
    time.sleep(0.45)
    assert live.get(f"/logins/{login_id}/logo", headers=ada).status_code == 502
    assert live.get(f"/logins/{login_id}/logo", headers=ada).status_code == 502
    assert eventory.calls("/logo") == 2  # asked once more, and that failure is remembered in turn
    eventory.logo = None  # fixed on Eventory's side
    time.sleep(0.45)
    fixed = live.get(f"/logins/{login_id}/logo", headers=ada)
    assert fixed.status_code == 200 and fixed.content == LOGO_BYTES
    assert eventory.calls("/logo") == 3


def test_a_change_of_credentials_asks_again_at_once_and_a_label_does_not(live, ada, eventory):
    login_id = save_login(live, ada)
    eventory.logo = DOWN
    assert live.get(f"/logins/{login_id}/logo", headers=ada).status_code == 502
    eventory.logo = None  # fixed on Eventory's side, but the failure is remembered
    assert live.request("PUT", f"/logins/{login_id}", json={"label": "Renamed"}, headers=ada).status_code == 200
    assert live.get(f"/logins/{login_id}/logo", headers=ada).status_code == 502
    assert eventory.calls("/logo") == 1
    changed = live.request("PUT", f"/logins/{login_id}", json={"password": EVENTORY_LOGIN["password"]}, headers=ada)
    assert changed.status_code == 200
    again = live.get(f"/logins/{login_id}/logo", headers=ada)
    assert again.status_code == 200 and again.content == LOGO_BYTES
    assert eventory.calls("/logo") == 2


@pytest.mark.parametrize(
    "failure",
    [DOWN, (404, b'{"detail": "Not Found"}', "application/json"), HTML],
    ids=["eventory-error", "no-logo", "not-an-image"],
)
def test_a_failed_refresh_keeps_serving_the_good_logo_and_is_asked_once(live, ada, eventory, monkeypatch, failure):
    monkeypatch.setattr(logos, "MAX_AGE", 0)  # every logo is due: each call would ask Eventory
    login_id = save_login(live, ada)
    good = live.get(f"/logins/{login_id}/logo", headers=ada)
    assert good.status_code == 200 and good.content == LOGO_BYTES
    eventory.logo = failure
    answers = [live.get(f"/logins/{login_id}/logo", headers=ada) for _ in range(5)]
    assert [(answer.status_code, answer.content) for answer in answers] == [(200, LOGO_BYTES)] * 5
    assert {answer.headers["Content-Type"] for answer in answers} == {"image/png"}
    assert {answer.headers["ETag"] for answer in answers} == {good.headers["ETag"]}
    assert eventory.calls("/logo") == 2  # the good fetch, and one refresh that failed


def test_the_failure_memory_keeps_only_the_newest_failures(monkeypatch):
    monkeypatch.setattr(logos, "FAILURES_KEPT", 3)
    failures = logos.Failures()
    keys = [bytes([number]) * 32 for number in range(6)]
    for number, key in enumerate(keys[:5]):
        failures.remember(key, EventoryUnavailable(f"failure {number}"))
    assert len(failures) == 3
    assert failures.recall(keys[0]) is None and failures.recall(keys[1]) is None
    newest = failures.recall(keys[4])
    assert newest is not None and (newest.code, newest.description) == (502, "failure 4")
    failures.remember(keys[2], logos.NoLogo())  # remembered again: the newest now
    failures.remember(keys[5], EventoryUnavailable("failure 5"))
    assert failures.recall(keys[3]) is None
    again = failures.recall(keys[2])
    assert again is not None and (again.code, again.description) == (404, logos.NoLogo.description)
    assert len(failures) == 3


def test_a_failure_past_its_memory_is_forgotten(monkeypatch):
    failures = logos.Failures()
    monkeypatch.setattr(logos, "FAILURE_MEMORY", -1)  # already past when remembered
    failures.remember(b"k" * 32, EventoryUnavailable("gone"))
    assert failures.recall(b"k" * 32) is None
    assert len(failures) == 0


# --- the proxy limit (issue 27) ------------------------------------------------------------------


def test_every_logo_call_counts_against_the_proxy_limit_shared_with_brokered_calls(make_app, serve, eventory):
    live = serve(make_app(RATELIMIT_ENABLED=True, RATELIMIT_PROXY="4/minute", RATELIMIT_STORAGE_URI="memory://"))
    headers = account(live)
    good, broken = save_login(live, headers), save_login(live, headers, label="Broken logo")
    first = live.get(f"/logins/{good}/logo", headers=headers)
    assert first.status_code == 200
    unchanged = live.get(f"/logins/{good}/logo", headers={**headers, "If-None-Match": first.headers["ETag"]})
    assert unchanged.status_code == 304
    eventory.logo = DOWN
    assert live.get(f"/logins/{broken}/logo", headers=headers).status_code == 502
    assert live.get(f"/logins/{broken}/logo", headers=headers).status_code == 502  # from memory
    assert eventory.calls("/logo") == 2
    eventory.reset()

    refused = live.get(f"/logins/{good}/logo", headers=headers)
    assert refused.status_code == 429, refused.status_code
    assert refused.headers["Content-Type"] == "application/json" and refused.json()["detail"]
    assert refused.headers["Retry-After"].isdigit() and 0 < int(refused.headers["Retry-After"]) <= 60
    brokered = live.get("/eventory/jobs/list", headers={**headers, "X-Eventory-Login": str(good)})
    assert brokered.status_code == 429 and brokered.json()["detail"]
    assert eventory.requests == []
    assert live.get(f"/logins/{good}/logo", headers=account(live, BOB)).status_code == 404  # Bob has his own budget


def test_an_invitation_not_yet_accepted_reaches_no_logo(live, eventory):
    ada, bob = account(live), account(live, BOB)
    login_id = save_login(live, ada)
    invited = live.post(f"/logins/{login_id}/shares", json={"username": "bob", "role": "use"}, headers=ada)
    assert invited.status_code == 201 and invited.json()["accepted"] is False
    pending = live.get(f"/logins/{login_id}/logo", headers=bob)
    assert pending.status_code == 404 and LOGO_BYTES not in pending.content
    assert eventory.requests == []
    assert live.post(f"/shares/{invited.json()['id']}/accept", headers=bob).status_code == 200
    assert live.get(f"/logins/{login_id}/logo", headers=bob).content == LOGO_BYTES
