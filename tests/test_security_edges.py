"""Issue 11, limits and edges: the public relay never forwards one of our tokens in any
spelling; login limits stop guessing without locking people out; relayed HTML cannot run
script on this origin; deeply nested JSON is a 400 everywhere. Against waitress and the eventory
Eventory over real sockets."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from .helpers import ADA, BOB, EVENTORY_LOGIN, account, save_login

# --- 7. the public relay ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "Bearer {t}",
        "Bearer\t{t}",
        "bearer  {t}",
        "{t}",
        "JWT {t}",
        "Token {t}",
        "Basic Zm9vOmJhcg==, Bearer {t}",
        "Bearer eventory-token, Bearer {t}",
        "Bearer {t}==",
        "Bearer  {t} ",
    ],
)
def test_the_public_relay_never_forwards_a_backend_token_in_any_spelling(make_app, serve, eventory, spelling):
    live = serve(make_app(PROXY_PUBLIC=True))
    token = account(live)["Authorization"].removeprefix("Bearer ")
    eventory.reset()
    response = live.get("/eventory/echo", headers={"Authorization": spelling.format(t=token)})
    assert response.status_code == 200
    forwarded = [headers.get("Authorization") for _method, _path, headers in eventory.requests]
    assert forwarded == [None]
    assert token not in response.text


def test_the_public_relay_still_forwards_the_clients_own_eventory_token(make_app, serve, eventory):
    live = serve(make_app(PROXY_PUBLIC=True))
    eventory_token = eventory.issue_token(EVENTORY_LOGIN["username"])
    response = live.get("/eventory/user-info", headers={"Authorization": f"Bearer {eventory_token}"})
    assert response.status_code == 200 and response.json()["organizationName"] == "Org One"


# --- 8. login limits ----------------------------------------------------------------------------


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


# --- 9. relayed HTML ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/eventory/echo", "/eventory/status/404", "/eventory/jobs/list"])
def test_relayed_answers_are_sandboxed_and_never_sniffed(live, eventory, path):
    headers = account(live)
    brokered = {**headers, "X-Eventory-Login": str(save_login(live, headers))}
    response = live.get(path, headers=brokered)
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- 12. deeply nested JSON ---------------------------------------------------------------------

DEEP = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in {"static", "swagger_ui_static"}:
            continue
        path = rule.rule.replace("<id:login_id>", "1").replace("<anypath:path>", "echo")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, path


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
def test_deeply_nested_json_is_a_400_on_every_route_never_a_500(make_app, serve, eventory, body):
    # Limits on, as in production: their keys read the body too.
    live = serve(make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://"))
    headers = account(live)
    save_login(live, headers)
    # Every route that reads a JSON body answers 400 with a clear detail, and changes nothing.
    for method, path in [
        ("POST", "/auth/login"),
        ("POST", "/auth/register"),
        ("POST", "/logins"),
        ("PUT", "/logins/1"),
    ]:
        response = live.request(method, path, data=body, headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == 400 and "JSON" in response.json()["detail"], (method, path)
    assert [login["label"] for login in live.get("/logins", headers=headers).json()] == [EVENTORY_LOGIN["label"]]
    # No route answers it with a 500, with or without a token (some routes end the token: last).
    for auth in ({}, headers):
        for method, path in _routes(live.app):
            response = live.request(method, path, data=body, headers={**auth, "Content-Type": "application/json"})
            assert response.status_code < 500, (method, path, response.text)


# --- 10. two tabs refreshing at once ------------------------------------------------------------


def _refresh(live, refresh_token):
    return live.post("/auth/refresh", headers={"Authorization": f"Bearer {refresh_token}"})


def test_two_tabs_refreshing_at_once_both_get_a_working_pair(make_app, serve):
    live = serve(make_app(REFRESH_GRACE_SECONDS=5))
    live.post("/auth/register", json=ADA)
    pair = live.post("/auth/login", data=ADA).json()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _n: _refresh(live, pair["refresh_token"]), range(4)))
    assert [answer.status_code for answer in answers] == [200] * 4
    for answer in answers:
        tab = answer.json()
        assert live.get("/auth/me", headers={"Authorization": f"Bearer {tab['access_token']}"}).status_code == 200
        assert _refresh(live, tab["refresh_token"]).status_code == 200  # each tab goes on refreshing


def test_a_reuse_after_the_grace_window_still_ends_the_family(make_app, serve):
    live = serve(make_app(REFRESH_GRACE_SECONDS=1))
    live.post("/auth/register", json=ADA)
    pair = live.post("/auth/login", data=ADA).json()
    successor = _refresh(live, pair["refresh_token"]).json()
    time.sleep(1.5)
    replayed = _refresh(live, pair["refresh_token"])
    assert replayed.status_code == 401 and "ended" in replayed.json()["detail"]
    assert live.get("/auth/me", headers={"Authorization": f"Bearer {successor['access_token']}"}).status_code == 401
    assert _refresh(live, successor["refresh_token"]).status_code == 401
