"""GET /logins/<id>/logo: the organisation's logo, read from Eventory with the login and kept a
day per login: ETag, Cache-Control: private, max-age=86400, If-None-Match answered 304 without
asking Eventory; read again after a change of credentials."""

from __future__ import annotations

import pytest

from eventory_backend.proxy import logos

from .fake_eventory import LOGO_BYTES
from .helpers import BOB, EVENTORY_LOGIN, account, assert_error, save_login, snapshot


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
