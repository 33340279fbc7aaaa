"""Rate limits: login per address and per username, register per address, password checks
per user, the proxy per user; who the client is behind a proxy; the failed-login log line."""

from __future__ import annotations

import logging
import re

import pytest

from .helpers import ADA, BOB, EVENTORY_LOGIN, account, register_and_login, save_login

PROXY = {"REMOTE_ADDR": "127.0.0.1"}
WRONG = "not the right password at all"


def limited_app(make_app, **settings):
    return make_app(RATELIMIT_ENABLED=True, **settings)


def from_address(address: str) -> dict:
    """Request keyword arguments for a client at `address`, straight to the socket."""
    return {"environ_base": {"REMOTE_ADDR": address}}


def behind_proxy(address: str) -> dict:
    """Request keyword arguments for a client at `address` behind the reverse proxy on 127.0.0.1."""
    return {"environ_base": PROXY, "headers": {"X-Forwarded-For": address}}


def assert_429(response):
    assert response.status_code == 429, (response.status_code, response.get_json())
    assert response.mimetype == "application/json"
    assert isinstance(response.json["detail"], str) and response.json["detail"]
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit(), retry_after
    assert 0 < int(retry_after) <= 60


def log_in(client, username, password, **kwargs):
    return client.post("/auth/login", data={"username": username, "password": password}, **kwargs)


# --- login ---------------------------------------------------------------------------------------


def test_login_is_limited_per_client_address(make_app):
    client = limited_app(make_app, RATELIMIT_LOGIN="3/minute").test_client()
    client.post("/auth/register", json=ADA)
    attacker = from_address("198.51.100.7")

    statuses = [log_in(client, name, WRONG, **attacker).status_code for name in ("ada", "bob", "carol")]
    blocked = log_in(client, ADA["username"], ADA["password"], **attacker)

    assert statuses == [401, 401, 401]
    assert_429(blocked)
    assert "access_token" not in blocked.json
    assert log_in(client, "dave", WRONG, **from_address("198.51.100.8")).status_code == 401


def test_login_is_limited_per_username_across_addresses(make_app):
    client = limited_app(make_app, RATELIMIT_LOGIN="3/minute", TRUSTED_PROXIES=["127.0.0.1"]).test_client()
    client.post("/auth/register", json=ADA)
    client.post("/auth/register", json=BOB)

    statuses = [
        log_in(client, name, WRONG, **behind_proxy(f"203.0.113.{number}")).status_code
        for number, name in enumerate(["ada", "ADA", " Ada "], start=1)
    ]
    blocked = log_in(client, ADA["username"], ADA["password"], **behind_proxy("203.0.113.4"))

    assert statuses == [401, 401, 401]
    assert_429(blocked)
    assert log_in(client, BOB["username"], BOB["password"], **behind_proxy("203.0.113.5")).status_code == 200


def test_login_limit_counts_json_logins_by_username_too(make_app):
    client = limited_app(make_app, RATELIMIT_LOGIN="3/minute", TRUSTED_PROXIES=["127.0.0.1"]).test_client()
    client.post("/auth/register", json=ADA)

    for number in range(3):
        client.post("/auth/login", json={"username": "ada", "password": WRONG}, **behind_proxy(f"203.0.113.{number}"))

    assert_429(client.post("/auth/login", json=ADA, **behind_proxy("203.0.113.9")))


@pytest.mark.parametrize("trusted", [[], ["10.9.9.9"]], ids=["no-trusted-proxy", "another-trusted-proxy"])
def test_forwarded_for_from_an_untrusted_peer_is_ignored(make_app, caplog, trusted):
    client = limited_app(make_app, RATELIMIT_LOGIN="3/minute", TRUSTED_PROXIES=trusted).test_client()
    client.post("/auth/register", json=ADA)
    caplog.set_level(logging.WARNING, logger="eventory_backend.auth")

    statuses = [
        log_in(client, name, WRONG, **behind_proxy(f"203.0.113.{number}")).status_code
        for number, name in enumerate(["ada", "bob", "carol"], start=1)
    ]

    assert statuses == [401, 401, 401]
    assert_429(log_in(client, ADA["username"], ADA["password"], **behind_proxy("203.0.113.99")))
    failures = [record.getMessage() for record in caplog.records if record.name == "eventory_backend.auth"]
    assert len(failures) == 3
    assert all("127.0.0.1" in line and "203.0.113" not in line for line in failures), failures


def test_429_detail_is_a_human_sentence_not_the_limit_string(make_app):
    client = limited_app(make_app, RATELIMIT_LOGIN="1/minute").test_client()
    log_in(client, "ada", WRONG)

    detail = log_in(client, "ada", WRONG).json["detail"]

    assert re.fullmatch(r"[A-Z][^\n]*\.", detail), f"not a sentence: {detail!r}"


def test_login_limit_is_configurable(make_app):
    client = limited_app(make_app, RATELIMIT_LOGIN="5/minute").test_client()

    statuses = [log_in(client, f"user{number}", WRONG).status_code for number in range(6)]

    assert statuses == [401] * 5 + [429]


def test_limits_can_be_turned_off(make_app):
    client = make_app(RATELIMIT_ENABLED=False, RATELIMIT_LOGIN="1/minute").test_client()

    assert [log_in(client, "ada", WRONG).status_code for _ in range(5)] == [401] * 5


# --- the failed-login log line -------------------------------------------------------------------


def test_failed_login_is_logged_in_one_line_with_address_and_username_never_the_password(make_app, caplog):
    client = make_app(TRUSTED_PROXIES=["127.0.0.1"]).test_client()
    client.post("/auth/register", json=ADA)
    caplog.set_level(logging.DEBUG)
    secret_guess = "my secret guess of a password"

    log_in(client, "ada", secret_guess, **behind_proxy("203.0.113.7"))
    log_in(client, "nobody", secret_guess, **behind_proxy("203.0.113.8"))
    log_in(client, ADA["username"], ADA["password"], **behind_proxy("203.0.113.9"))

    lines = [record for record in caplog.records if record.name == "eventory_backend.auth"]
    assert len(lines) == 2, [record.getMessage() for record in lines]
    for record, address, username in zip(lines, ("203.0.113.7", "203.0.113.8"), ("ada", "nobody"), strict=True):
        message = record.getMessage()
        assert record.levelno == logging.WARNING
        assert f"address={address}" in message and f"username={username}" in message
        assert "\n" not in message and "\r" not in message
        assert record.created > 0
    assert secret_guess not in caplog.text
    assert ADA["password"] not in caplog.text


# --- register ------------------------------------------------------------------------------------


def test_register_is_limited_per_address(make_app):
    client = limited_app(make_app, RATELIMIT_REGISTER="3/minute", TRUSTED_PROXIES=["127.0.0.1"]).test_client()
    here = behind_proxy("203.0.113.1")

    statuses = [
        client.post("/auth/register", json={"username": name, "password": ADA["password"]}, **here).status_code
        for name in ("ann", "ben", "cat")
    ]
    blocked = client.post("/auth/register", json={"username": "dan", "password": ADA["password"]}, **here)

    assert statuses == [201, 201, 201]
    assert_429(blocked)
    assert log_in(client, "dan", ADA["password"]).status_code == 401
    eve = {"username": "eve", "password": ADA["password"]}
    elsewhere = client.post("/auth/register", json=eve, **behind_proxy("203.0.113.2"))
    assert elsewhere.status_code == 201


# --- password checks inside a session ------------------------------------------------------------


def test_password_change_is_limited_per_user_and_wrong_guesses_count(make_app):
    app = limited_app(make_app, RATELIMIT_PASSWORD="3/minute")
    client = app.test_client()
    laptop = register_and_login(client, ADA)
    phone = {"Authorization": "Bearer " + log_in(client, ADA["username"], ADA["password"]).json["access_token"]}
    bob = register_and_login(client, BOB)

    def change(headers, current):
        return client.put(
            "/auth/password",
            json={"current_password": current, "new_password": "a new passphrase here"},
            headers=headers,
        )

    statuses = [change(laptop, WRONG).status_code, change(phone, WRONG).status_code, change(laptop, WRONG).status_code]
    blocked = change(phone, ADA["password"])

    assert statuses == [403, 403, 403]
    assert_429(blocked)
    assert log_in(client, ADA["username"], ADA["password"]).status_code == 200
    assert change(bob, WRONG).status_code == 403


def test_wrong_passwords_on_account_deletion_are_limited_too(make_app):
    client = limited_app(make_app, RATELIMIT_PASSWORD="3/minute").test_client()
    ada = register_and_login(client, ADA)

    statuses = [client.delete("/auth/me", json={"password": WRONG}, headers=ada).status_code for _ in range(3)]
    blocked = client.delete("/auth/me", json={"password": ADA["password"]}, headers=ada)

    assert statuses == [403, 403, 403]
    assert_429(blocked)
    assert client.get("/auth/me", headers=ada).status_code == 200


# --- the proxy -----------------------------------------------------------------------------------


def test_proxy_is_limited_per_user(make_app, eventory):
    client = limited_app(make_app, RATELIMIT_PROXY="3/minute").test_client()
    ada = register_and_login(client, ADA)
    bob = register_and_login(client, BOB)
    eventory.reset()

    statuses = [client.get("/eventory/echo", headers=ada).status_code for _ in range(3)]
    blocked = client.get("/eventory/echo", headers=ada)

    assert statuses == [200, 200, 200]
    assert_429(blocked)
    assert len(eventory.requests) == 3
    assert client.get("/eventory/echo", headers=bob).status_code == 200


def test_proxy_limit_is_shared_by_relay_fan_out_and_session(make_app, eventory):
    client = limited_app(make_app, RATELIMIT_PROXY="3/minute").test_client()
    ada = register_and_login(client, ADA)
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=ada).json["id"]

    statuses = [
        client.get("/eventory/echo", headers=ada).status_code,
        client.get("/multisite/jobs/list", headers=ada).status_code,
        client.post(f"/logins/{login_id}/session", headers=ada).status_code,
    ]

    assert statuses == [200, 200, 200]
    assert_429(client.get("/multisite/jobs/list", headers=ada))
    assert_429(client.get("/eventory/echo", headers=ada))
    assert_429(client.post(f"/logins/{login_id}/session", headers=ada))


def test_proxy_limit_counts_the_user_not_the_address(make_app, eventory):
    client = limited_app(make_app, RATELIMIT_PROXY="3/minute", TRUSTED_PROXIES=["127.0.0.1"]).test_client()
    ada = register_and_login(client, ADA)

    for number in range(3):
        client.get("/eventory/echo", headers={**ada, "X-Forwarded-For": f"203.0.113.{number}"}, environ_base=PROXY)

    assert_429(client.get("/eventory/echo", headers={**ada, "X-Forwarded-For": "203.0.113.50"}, environ_base=PROXY))


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


def test_a_fan_out_refused_by_the_proxy_limit_costs_nothing(make_app, eventory):
    client = limited_app(make_app, RATELIMIT_PROXY="4/minute").test_client()
    ada = register_and_login(client, ADA)
    ids = [
        client.post("/logins", json={**EVENTORY_LOGIN, "label": f"Org {n}"}, headers=ada).json["id"] for n in range(3)
    ]
    brokered = {**ada, "X-Eventory-Login": str(ids[0])}
    assert [client.get("/eventory/jobs/list", headers=brokered).status_code for _ in range(2)] == [200, 200]  # 2 of 4
    eventory.reset()

    assert_429(client.get("/multisite/jobs/list", headers=ada))  # 3 more would pass 4
    assert eventory.requests == []
    # Had the refused fan-out been counted, these would be 429 too.
    assert [client.get("/eventory/jobs/list", headers=brokered).status_code for _ in range(2)] == [200, 200]
    assert_429(client.get("/eventory/jobs/list", headers=brokered))


def test_a_fan_out_larger_than_the_whole_limit_says_so_instead_of_retry_in_a_second(make_app, eventory):
    client = limited_app(make_app, RATELIMIT_PROXY="2/minute").test_client()
    ada = register_and_login(client, ADA)
    ids = [
        client.post("/logins", json={**EVENTORY_LOGIN, "label": f"Org {n}"}, headers=ada).json["id"] for n in range(3)
    ]

    refused = client.get("/multisite/jobs/list", headers=ada)

    assert_429(refused)
    assert refused.headers["Retry-After"] == "60"  # the whole window, not a second it would never fit in
    assert "3 calls" in refused.json["detail"] and "?logins=" in refused.json["detail"]
    assert eventory.requests == []
    chosen = client.get(f"/multisite/jobs/list?logins={ids[0]},{ids[1]}", headers=ada)
    assert chosen.status_code == 200 and len(chosen.json["results"]) == 2


def test_a_fan_out_counts_no_invitation_not_yet_accepted(make_app, eventory):
    client = limited_app(make_app, RATELIMIT_PROXY="2/minute").test_client()
    ada, bob = register_and_login(client, ADA), register_and_login(client, BOB)
    own = client.post("/logins", json=EVENTORY_LOGIN, headers=ada).json["id"]
    for number in range(5):
        offered = client.post("/logins", json={**EVENTORY_LOGIN, "label": f"Bob's {number}"}, headers=bob).json["id"]
        invited = client.post(f"/logins/{offered}/shares", json={"username": "ada", "role": "use"}, headers=bob)
        assert invited.status_code == 201 and invited.json["accepted"] is False, invited.json
    assert len(client.get("/shares/incoming", headers=ada).json) == 5

    for _ in range(2):  # each costs 1 (her own login), not 6
        fanned = client.get("/multisite/jobs/list", headers=ada)
        assert fanned.status_code == 200, fanned.json
        assert [entry["login_id"] for entry in fanned.json["results"]] == [own]
    assert_429(client.get("/multisite/jobs/list", headers=ada))


def _login(live, who, address):
    return live.post("/auth/login", data=who, headers={"X-Forwarded-For": address})


@pytest.fixture
def limited(make_app, serve):
    return serve(
        make_app(
            RATELIMIT_ENABLED=True,
            RATELIMIT_LOGIN="3/minute",
            RATELIMIT_STORAGE_URI="memory://",
            TRUSTED_PROXIES=["127.0.0.1"],
        )
    )


def test_right_passwords_do_not_count_against_the_username(limited):
    limited.post("/auth/register", json=ADA)
    addresses = [f"198.51.100.{number}" for number in range(1, 8)]
    assert [_login(limited, ADA, address).status_code for address in addresses] == [200] * 7


def test_wrong_passwords_from_many_addresses_count_against_the_username(limited):
    limited.post("/auth/register", json=ADA)
    wrong = {**ADA, "password": "not the right passphrase"}
    answers = [_login(limited, wrong, f"198.51.100.{number}").status_code for number in range(1, 5)]
    assert answers == [401, 401, 401, 429]
    refused = _login(limited, ADA, "198.51.100.99")
    assert refused.status_code == 429 and refused.json()["detail"] and "Retry-After" in refused.headers
    assert _login(limited, BOB, "198.51.100.99").status_code == 401  # another name has its own budget


def test_ipv6_clients_are_limited_per_64(limited):
    wrong = {**ADA, "password": "not the right passphrase"}
    in_one_64 = [f"2001:db8:1:2::{number:x}" for number in range(1, 5)]
    assert [_login(limited, {**wrong, "username": f"u{n}"}, a).status_code for n, a in enumerate(in_one_64)] == [
        401,
        401,
        401,
        429,
    ]
    assert _login(limited, {**wrong, "username": "other"}, "2001:db8:1:3::1").status_code == 401  # another /64
    assert _login(limited, {**wrong, "username": "v4"}, "198.51.100.7").status_code == 401
