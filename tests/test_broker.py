"""The broker: X-Eventory-Login signs in with a stored login and caches the Eventory token;
POST /logins/<id>/session hands one to the client."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from .helpers import ADA, BOB, EVENTORY_LOGIN, account, save_login, tamper

# --- X-Eventory-Login ----------------------------------------------------------------------------


def test_brokered_call_signs_in_with_the_stored_login(live, ada, eventory):
    login_id = save_login(live, ada)
    eventory.reset()
    response = live.get("/eventory/jobs/list?page=1", headers={**ada, "X-Eventory-Login": str(login_id)})
    assert response.status_code == 200
    assert response.json()[0]["organisation"] == "Org One"
    assert eventory.login_count["anna@example.com"] == 1
    eventory_token = eventory.requests[-1][2]["authorization"].removeprefix("Bearer ")
    assert eventory_token not in response.text and eventory_token not in str(response.headers)
    again = live.get("/eventory/jobs/list", headers={**ada, "X-Eventory-Login": str(login_id)})
    assert again.status_code == 200
    assert eventory.login_count["anna@example.com"] == 1  # cached


def test_concurrent_brokered_calls_share_one_sign_in(live, ada, eventory):
    login_id = save_login(live, ada)
    eventory.reset()
    eventory.login_delay = 0.3
    statuses = []
    barrier = threading.Barrier(6)

    def call():
        barrier.wait()
        statuses.append(live.get("/eventory/jobs/list", headers={**ada, "X-Eventory-Login": str(login_id)}).status_code)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 6
    assert eventory.login_count["anna@example.com"] == 1


def test_rejected_stored_credentials_are_a_distinct_502(live, ada, eventory):
    login_id = save_login(live, ada, password="wrong eventory password")
    response = live.get("/eventory/jobs/list", headers={**ada, "X-Eventory-Login": str(login_id)})
    assert response.status_code == 502
    assert "rejected" in response.json()["detail"]
    assert "wrong eventory password" not in response.text


def test_a_stored_password_no_key_reads_is_a_500_before_any_sign_in(app, live, ada, eventory):
    """The password is decrypted only to sign in; one the server's keys cannot read is refused
    there, before Eventory is asked, on the relay, /session and the fan-out alike."""
    login_id = save_login(live, ada)
    tamper(app, login_id)
    eventory.reset()
    brokered = {**ada, "X-Eventory-Login": str(login_id)}

    relayed = live.get("/eventory/jobs/list", headers=brokered)
    session = live.post(f"/logins/{login_id}/session", headers=ada)
    fanned = live.get("/multisite/jobs/list", headers=ada)

    for response in (relayed, session):
        assert response.status_code == 500
        assert "cannot be decrypted" in response.json()["detail"]
    assert fanned.status_code == 200
    assert "cannot be decrypted" in fanned.json()["results"][0]["error"]
    assert eventory.login_count == {}
    assert "gAAAAAtampered" not in relayed.text + session.text + fanned.text


@pytest.mark.parametrize("value", ["999999", "abc", "-1", "1.0", "٣", "99999999999999999999"])
def test_unknown_or_malformed_login_header_is_404(live, ada, eventory, value):
    eventory.reset()
    response = live.get("/eventory/jobs/list", headers={**ada, "X-Eventory-Login": value.encode().decode("latin-1")})
    assert response.status_code == 404
    assert eventory.requests == []


def test_another_users_login_is_404_in_every_route(live, eventory):
    ada = account(live)
    login_id = save_login(live, ada)
    bob = account(live, BOB)
    eventory.reset()
    assert live.get("/eventory/jobs/list", headers={**bob, "X-Eventory-Login": str(login_id)}).status_code == 404
    assert live.post(f"/logins/{login_id}/session", headers=bob).status_code == 404
    assert live.get(f"/multisite/jobs/list?logins={login_id}", headers=bob).status_code == 404
    assert eventory.login_count["anna@example.com"] == 0


# --- the token cache -----------------------------------------------------------------------------


def test_expired_eventory_token_is_renewed_once(live, ada, eventory):
    login_id = save_login(live, ada)
    live.get("/eventory/jobs/list", headers={**ada, "X-Eventory-Login": str(login_id)})
    eventory.expire_all_tokens()
    eventory.reset()
    response = live.request(
        "PUT", "/eventory/pack-list-rentals/7", json={"packed": 3}, headers={**ada, "X-Eventory-Login": str(login_id)}
    )
    assert response.status_code == 200
    assert response.json() == {"id": 7, "updated": {"packed": 3}}
    assert eventory.login_count["anna@example.com"] == 1
    assert [method for method, path, _ in eventory.requests if path == "/pack-list-rentals/7"] == ["PUT", "PUT"]


def test_large_streamed_body_is_not_replayed(live, ada, eventory):
    login_id = save_login(live, ada)
    live.get("/eventory/jobs/list", headers={**ada, "X-Eventory-Login": str(login_id)})
    eventory.expire_all_tokens()
    eventory.reset()
    response = live.post(
        "/eventory/pack-list-rentals/7",
        data=iter([b"x" * 1_000_000] * 3),
        headers={**ada, "X-Eventory-Login": str(login_id)},
    )
    assert response.status_code in (401, 404)
    assert eventory.login_count["anna@example.com"] == 0


def test_after_a_refused_streamed_body_the_next_call_signs_in_afresh(live, ada, eventory):
    login_id = save_login(live, ada)
    brokered = {**ada, "X-Eventory-Login": str(login_id)}
    live.get("/eventory/jobs/list", headers=brokered)
    eventory.expire_all_tokens()
    eventory.reset()
    large = json.dumps({"items": ["x" * 1000] * 2000}).encode()  # over the 1 MiB that is kept for a replay
    first = live.request("PUT", "/eventory/pack-list-rentals/7", data=iter([large]), headers=brokered)
    assert first.status_code == 401  # Eventory's answer: the streamed body cannot be sent twice
    again = live.request("PUT", "/eventory/pack-list-rentals/7", data=iter([large]), headers=brokered)
    assert again.status_code == 200, again.text
    assert eventory.login_count["anna@example.com"] == 1


def test_token_ttl_comes_from_config(make_app, serve, eventory):
    live = serve(make_app(EVENTORY_TOKEN_TTL=0))
    headers = account(live)
    login_id = save_login(live, headers)
    eventory.reset()
    for _ in range(2):
        live.get("/eventory/jobs/list", headers={**headers, "X-Eventory-Login": str(login_id)})
    assert eventory.login_count["anna@example.com"] == 2


def test_changing_the_credentials_or_deleting_a_login_drops_its_token(live, ada, eventory):
    login_id = save_login(live, ada)
    brokered = {**ada, "X-Eventory-Login": str(login_id)}
    live.get("/eventory/jobs/list", headers=brokered)
    eventory.reset()
    live.request("PUT", f"/logins/{login_id}", json={"label": "Renamed"}, headers=ada)
    live.get("/eventory/jobs/list", headers=brokered)
    assert eventory.login_count["anna@example.com"] == 0  # same credentials: the token still serves
    live.request("PUT", f"/logins/{login_id}", json={"password": EVENTORY_LOGIN["password"]}, headers=ada)
    live.get("/eventory/jobs/list", headers=brokered)
    assert eventory.login_count["anna@example.com"] == 1  # a password saved again: signed in afresh
    live.request("DELETE", f"/logins/{login_id}", headers=ada)
    eventory.reset()
    response = live.get("/eventory/jobs/list", headers=brokered)
    assert response.status_code == 404
    assert eventory.requests == []


def test_account_deletion_forgets_cached_eventory_tokens(live, eventory):
    eventory.add_user("bruno@example.com", "eventory-pass-2", "Org Two")
    cache = live.app.extensions["eventory_tokens"]
    ada = account(live)
    ada_login = save_login(live, ada)
    first = live.get("/eventory/user-info", headers={**ada, "X-Eventory-Login": str(ada_login)})
    assert first.json()["organizationName"] == "Org One"
    assert ada_login in cache.logins_held()

    deleted = live.request("DELETE", "/auth/me", json={"password": ADA["password"]}, headers=ada)

    assert deleted.status_code == 204
    assert ada_login not in cache.logins_held()
    # Ids are not handed out again, and a token is only found with the credentials it was
    # signed in with: Bob's new login signs in for itself.
    bob = account(live, BOB)
    bob_login = save_login(live, bob, label="Bruno", username="bruno@example.com", password="eventory-pass-2")
    answer = live.get("/eventory/user-info", headers={**bob, "X-Eventory-Login": str(bob_login)})
    assert answer.json()["organizationName"] == "Org Two"
    assert eventory.login_count["bruno@example.com"] == 1


# --- /logins/<id>/session ------------------------------------------------------------------------


def test_session_returns_an_eventory_token_and_stores_the_organisation(live, ada, eventory):
    login_id = save_login(live, ada)
    response = live.post(f"/logins/{login_id}/session", headers=ada)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert (body["organisation"], body["first_name"], body["last_name"]) == ("Org One", "Anna", "Andersson")
    direct = requests.get(
        eventory.url + "/user-info", headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=5
    )
    assert direct.status_code == 200
    assert live.get("/logins", headers=ada).json()[0]["organisation"] == "Org One"


def test_session_with_rejected_credentials_is_502(live, ada, eventory):
    login_id = save_login(live, ada, password="nope")
    response = live.post(f"/logins/{login_id}/session", headers=ada)
    assert response.status_code == 502
    assert "rejected" in response.json()["detail"]


BERT = {"username": "bert@example.com", "password": "eventory-pass-2"}


def _organisation(live, headers, login_id) -> tuple[int, str | None]:
    response = live.get("/eventory/user-info", headers={**headers, "X-Eventory-Login": str(login_id)})
    return response.status_code, (response.json().get("organizationName") if response.ok else None)


def test_a_login_switched_to_another_account_by_another_instance_never_gets_the_old_token(
    two_instances_on_sqlite, eventory
):
    first, second = two_instances_on_sqlite
    eventory.add_user(BERT["username"], BERT["password"], "Org Two")
    headers = account(first)
    login_id = save_login(first, headers)
    assert _organisation(first, headers, login_id) == (200, "Org One")  # cached in the first

    assert second.request("PUT", f"/logins/{login_id}", json=BERT, headers=headers).status_code == 200
    # The first instance was not told; it must still never serve Org One's token for Bert.
    assert _organisation(first, headers, login_id) == (200, "Org Two")
    assert eventory.login_count[BERT["username"]] == 1
    assert first.post(f"/logins/{login_id}/session", headers=headers).json()["organisation"] == "Org Two"


def test_a_deleted_logins_id_is_never_handed_to_the_next_one_and_serves_nobody(two_instances_on_sqlite, eventory):
    first, second = two_instances_on_sqlite
    ada, bob = account(first, ADA), account(first, BOB)
    ada_login = save_login(first, ada)
    assert _organisation(first, ada, ada_login) == (200, "Org One")  # cached in the first

    assert second.request("DELETE", f"/logins/{ada_login}", headers=ada).status_code == 204
    bobs = save_login(second, bob, password="wrong-for-bob")
    assert bobs > ada_login  # the highest id, deleted, is not handed out again
    for live in (first, second):
        assert _organisation(live, ada, ada_login)[0] == 404
        assert _organisation(live, bob, ada_login)[0] == 404
        response = live.post(f"/logins/{ada_login}/session", headers=bob)
        assert response.status_code == 404 and "access_token" not in response.text


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


def test_a_rejection_outlives_edits_that_leave_the_credentials_as_they_were(live, eventory):
    headers = account(live)
    login_id = save_login(live, headers, password="not-annas-password")
    brokered = {**headers, "X-Eventory-Login": str(login_id)}
    assert live.get("/eventory/jobs/list", headers=brokered).status_code == 502
    eventory.reset()
    edit = {"label": "Renamed", "color": "#000000", "username": EVENTORY_LOGIN["username"]}
    assert live.request("PUT", f"/logins/{login_id}", json=edit, headers=headers).status_code == 200
    assert live.get("/eventory/jobs/list", headers=brokered).status_code == 502
    assert eventory.login_attempts == 0


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
