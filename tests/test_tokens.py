"""Access and refresh tokens: what an access token carries, logout and logout-all, refresh rotation
and reuse, the verified tokens the app remembers, and every missing or bad token (a refresh token
among them) refused on every protected route."""

from __future__ import annotations

import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import jwt
import pytest
from flask_jwt_extended import create_access_token, decode_token

from eventory_backend.auth.guard import VERIFIED_TOKENS, VerifiedTokens
from eventory_backend.auth.models import User
from eventory_backend.extensions import db

from .helpers import (
    ADA,
    BOB,
    EVENTORY_LOGIN,
    NEW_PASSWORD,
    ada_logins,
    assert_401,
    assert_error,
    bear,
    bearer,
    log_in,
    me_status,
    refresh,
    register_and_login,
    snapshot,
)


def test_an_access_token_carries_only_what_its_checks_need(client):
    """Readable by anyone who holds it, so no username or other personal data; and, being a bearer
    header rather than a cookie, no CSRF value (which would only lengthen every request)."""
    token = register_and_login(client, ADA)["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) == {"sub", "type", "fresh", "jti", "iat", "nbf", "exp", "gen", "fam"}
    assert claims["type"] == "access" and claims["sub"].isdigit()


def test_token_of_a_deleted_user_is_401(app, client, ada):
    with app.app_context():
        db.session.execute(db.delete(User))
        db.session.commit()
    response = client.get("/auth/me", headers=ada)
    assert response.status_code == 401


# --- logout and logout-all -----------------------------------------------------------------------


def test_logout_ends_the_token_it_was_called_with(client, ada_tokens):
    response = client.post("/auth/logout", headers=bearer(ada_tokens["access_token"]))

    assert response.status_code == 204
    assert_401(client.get("/auth/me", headers=bearer(ada_tokens["access_token"])))
    assert_401(client.get("/logins", headers=bearer(ada_tokens["access_token"])))


def test_logout_ends_that_sessions_refresh_token_too(client, ada_tokens):
    client.post("/auth/logout", headers=bearer(ada_tokens["access_token"]))

    assert_401(refresh(client, ada_tokens["refresh_token"]))


def test_logout_leaves_the_users_other_sessions_alone(client, ada_tokens):
    phone = log_in(client)

    client.post("/auth/logout", headers=bearer(ada_tokens["access_token"]))

    assert me_status(client, phone["access_token"]) == 200
    assert refresh(client, phone["refresh_token"]).status_code == 200


def test_logging_in_again_after_logout_works(client, ada_tokens):
    client.post("/auth/logout", headers=bearer(ada_tokens["access_token"]))

    assert me_status(client, log_in(client)["access_token"]) == 200


def test_logout_all_ends_every_token_of_the_user_only(client, ada_tokens):
    phone = log_in(client)
    bob = register_and_login(client, BOB)

    response = client.post("/auth/logout-all", headers=bearer(ada_tokens["access_token"]))

    assert response.status_code == 204
    for session in (ada_tokens, phone):
        assert_401(client.get("/auth/me", headers=bearer(session["access_token"])))
        assert_401(refresh(client, session["refresh_token"]))
    assert client.get("/auth/me", headers=bob).status_code == 200
    assert me_status(client, log_in(client)["access_token"]) == 200


@pytest.mark.parametrize("route", ["/auth/logout", "/auth/logout-all"])
def test_logout_holds_after_a_restart_and_on_another_instance(make_app, route):
    first = make_app()
    first.test_client().post("/auth/register", json=ADA)
    session = log_in(first.test_client())
    assert first.test_client().post(route, headers=bearer(session["access_token"])).status_code == 204

    restarted = make_app().test_client()

    assert_401(restarted.get("/auth/me", headers=bearer(session["access_token"])))
    assert_401(refresh(restarted, session["refresh_token"]))


# --- refresh tokens ------------------------------------------------------------------------------


def test_login_returns_a_refresh_token_beside_the_access_token(client, ada_tokens):
    assert ada_tokens["token_type"] == "bearer"
    assert isinstance(ada_tokens["expires_in"], int) and ada_tokens["expires_in"] > 0
    assert ada_tokens["refresh_token"] and ada_tokens["refresh_token"] != ada_tokens["access_token"]
    assert me_status(client, ada_tokens["access_token"]) == 200


@pytest.mark.parametrize("days", [None, 2])
def test_refresh_token_lives_for_the_configured_days(make_app, days):
    app = make_app() if days is None else make_app(REFRESH_TOKEN_EXPIRE_DAYS=days)
    client = app.test_client()
    client.post("/auth/register", json=ADA)

    claims = jwt.decode(log_in(client)["refresh_token"], options={"verify_signature": False})

    assert timedelta(seconds=claims["exp"] - claims["iat"]) == timedelta(days=days or 30)


def test_refresh_gives_a_new_working_pair(client, ada_tokens):
    response = refresh(client, ada_tokens["refresh_token"])

    assert response.status_code == 200, response.json
    pair = response.json
    assert pair["token_type"] == "bearer"
    assert pair["access_token"] != ada_tokens["access_token"]
    assert pair["refresh_token"] != ada_tokens["refresh_token"]
    assert client.get("/auth/me", headers=bear(pair)).json["username"] == "ada"
    assert refresh(client, pair["refresh_token"]).status_code == 200


def test_a_refresh_token_works_only_once(client, ada_tokens):
    client.application.config["REFRESH_GRACE_SECONDS"] = 0  # the second use comes after the grace window
    assert refresh(client, ada_tokens["refresh_token"]).status_code == 200

    assert_401(refresh(client, ada_tokens["refresh_token"]))


def test_reused_refresh_token_ends_the_whole_family(client, ada_tokens):
    """A thief and the owner both hold the refresh token: whoever comes second ends them both."""
    client.application.config["REFRESH_GRACE_SECONDS"] = 0  # the second use comes after the grace window
    rotated = refresh(client, ada_tokens["refresh_token"]).json
    other_device = log_in(client)

    assert_401(refresh(client, ada_tokens["refresh_token"]))

    assert_401(refresh(client, rotated["refresh_token"]))
    assert_401(client.get("/auth/me", headers=bear(rotated)))
    assert_401(client.get("/auth/me", headers=bear(ada_tokens)))
    # Another login of the same account is another family.
    assert me_status(client, other_device["access_token"]) == 200
    assert refresh(client, other_device["refresh_token"]).status_code == 200


def test_access_token_cannot_be_used_as_a_refresh_token(client, ada_tokens):
    assert_401(refresh(client, ada_tokens["access_token"]))

    # Nothing was rotated or ended by the attempt.
    assert me_status(client, ada_tokens["access_token"]) == 200
    assert refresh(client, ada_tokens["refresh_token"]).status_code == 200


# --- remembered tokens ---------------------------------------------------------------------------


# A verified token is remembered (auth/guard.py); these hold what the cache must not change.


def test_a_remembered_token_still_ends_at_logout(client, ada):
    assert client.get("/auth/me", headers=ada).status_code == 200
    assert client.get("/auth/me", headers=ada).status_code == 200
    assert client.post("/auth/logout", headers=ada).status_code == 204
    assert client.get("/auth/me", headers=ada).status_code == 401


def test_a_remembered_token_is_refused_once_it_expires(app, client, ada):
    with app.app_context():
        claims = decode_token(ada["Authorization"].split()[1])
        short = create_access_token(
            identity=claims["sub"],
            additional_claims={"gen": claims["gen"], "fam": claims["fam"]},
            expires_delta=timedelta(seconds=1),
        )
    assert client.get("/auth/me", headers=bearer(short)).status_code == 200  # verified, now remembered
    time.sleep(2.1)  # exp is in whole seconds
    response = client.get("/auth/me", headers=bearer(short))
    assert response.status_code == 401
    assert "expired" in response.json["detail"]


def test_a_token_differing_only_in_its_signature_is_checked_afresh_and_refused(client, ada):
    token = ada["Authorization"].split()[1]
    assert client.get("/auth/me", headers=ada).status_code == 200
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    assert client.get("/auth/me", headers=bearer(forged)).status_code == 401


def test_a_token_remembered_by_one_app_is_not_trusted_by_an_app_with_another_key(make_app):
    first = make_app(SECRET_KEY="first-secret-key-of-at-least-32-bytes")
    headers = register_and_login(first.test_client(), ADA)
    assert first.test_client().get("/auth/me", headers=headers).status_code == 200
    other = make_app(SECRET_KEY="another-secret-key-of-at-least-32-bytes")
    assert other.test_client().get("/auth/me", headers=headers).status_code == 401


def test_the_verified_token_cache_is_bounded_and_hands_out_copies():
    cache = VerifiedTokens(max_entries=2)
    later = time.time() + 60
    for name in ("a", "b", "c"):
        cache.put(name, {"sub": name, "exp": later})
    # Full at the third: it starts over with that one.
    assert [name for name in ("a", "b", "c") if cache.get(name) is not None] == ["c"]
    assert cache.get("c") == {"sub": "c", "exp": later}
    cache.get("c")["sub"] = "changed"
    assert cache.get("c")["sub"] == "c"
    cache.put("gone", {"sub": "x", "exp": time.time() - 1})
    assert cache.get("gone") is None
    cache.put("no-expiry", {"sub": "x"})
    assert cache.get("no-expiry") is None


def test_the_verified_token_cache_keeps_a_token_for_its_leeway_after_exp_and_no_longer():
    just_expired = {"sub": "x", "exp": time.time() - 2}
    lenient = VerifiedTokens(leeway=timedelta(seconds=5))
    lenient.put("t", just_expired)
    assert lenient.get("t") == just_expired  # PyJWT too accepts it for 5 s past exp
    strict = VerifiedTokens(leeway=0)
    strict.put("t", just_expired)
    assert strict.get("t") is None


def test_a_verified_token_is_remembered_and_a_refused_one_is_not(app, client, ada):
    token = ada["Authorization"].split()[1]
    remembered = app.extensions[VERIFIED_TOKENS]
    assert remembered.get(token) is None
    assert client.get("/auth/me", headers=ada).status_code == 200
    assert remembered.get(token)["sub"] == "1"
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert client.get("/auth/me", headers=bearer(forged)).status_code == 401
    assert remembered.get(forged) is None


def test_a_timedelta_leeway_is_honoured_by_the_remembered_tokens(make_app):
    client = make_app(JWT_DECODE_LEEWAY=timedelta(seconds=5)).test_client()
    headers = register_and_login(client, ADA)
    assert client.get("/auth/me", headers=headers).status_code == 200
    assert client.get("/auth/me", headers=headers).status_code == 200  # from the cache


# --- missing or bad tokens, a refresh token among them ----------------------------------------


OTHER_SECRET = "another-secret-that-is-long-enough-for-hs512-" + "x" * 32


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _claims(app, tokens: dict, **changes) -> dict:
    """A real access token's claims with some changed; a key set to None is removed."""
    claims = jwt.decode(tokens["access_token"], app.config["JWT_SECRET_KEY"], algorithms=["HS256"])
    claims["jti"] = str(uuid.uuid4())
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _sign(app, tokens, key=None, algorithm="HS256", **changes) -> str:
    return jwt.encode(_claims(app, tokens, **changes), key or app.config["JWT_SECRET_KEY"], algorithm=algorithm)


def _tampered(app, tokens):
    head, payload, signature = tokens["access_token"].split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return f"Bearer {head}.{payload}.{flipped}"


def _payload_tampered(app, tokens):
    head, encoded, signature = tokens["access_token"].split(".")
    payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    payload["sub"] = "2"
    return f"Bearer {head}.{_b64url(json.dumps(payload).encode())}.{signature}"


def _alg_none(app, tokens):
    payload = tokens["access_token"].split(".")[1]
    head = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"Bearer {head}.{payload}."


def _expired(app, tokens):
    now = int(time.time())
    return "Bearer " + _sign(app, tokens, iat=now - 7200, nbf=now - 7200, exp=now - 3600)


def _not_yet_valid(app, tokens):
    now = int(time.time())
    return "Bearer " + _sign(app, tokens, iat=now, nbf=now + 3600, exp=now + 7200)


# Authorization headers built from Ada's token pair (None: no header at all).
TOKENS = {
    "no-header": None,
    "empty-header": lambda app, tokens: "",
    "bearer-with-nothing": lambda app, tokens: "Bearer",
    "bearer-and-a-space": lambda app, tokens: "Bearer ",
    "basic-scheme": lambda app, tokens: "Basic abc",
    "basic-with-the-real-token": lambda app, tokens: f"Basic {tokens['access_token']}",
    "token-without-scheme": lambda app, tokens: tokens["access_token"],
    "garbage": lambda app, tokens: "Bearer garbage",
    "three-garbage-parts": lambda app, tokens: "Bearer a.b.c",
    "token-then-extra-words": lambda app, tokens: f"Bearer {tokens['access_token']} extra",
    "tampered-signature": _tampered,
    "tampered-payload": _payload_tampered,
    "alg-none": _alg_none,
    "hs512-same-secret": lambda app, tokens: "Bearer " + _sign(app, tokens, algorithm="HS512"),
    "hs256-other-secret": lambda app, tokens: "Bearer " + _sign(app, tokens, key=OTHER_SECRET),
    "expired": _expired,
    "not-yet-valid": _not_yet_valid,
    "unknown-user": lambda app, tokens: "Bearer " + _sign(app, tokens, sub="999999"),
    "non-numeric-sub": lambda app, tokens: "Bearer " + _sign(app, tokens, sub="ada"),
    "integer-sub": lambda app, tokens: "Bearer " + _sign(app, tokens, sub=1),
    "no-sub": lambda app, tokens: "Bearer " + _sign(app, tokens, sub=None),
    "refresh-token": lambda app, tokens: "Bearer " + _sign(app, tokens, type="refresh"),
    "real-refresh-token": lambda app, tokens: f"Bearer {tokens['refresh_token']}",
}


# Every route that needs an access token, each with a body it would accept.
PROTECTED = [
    ("GET", "/auth/me", None),
    ("DELETE", "/auth/me", {"password": ADA["password"]}),
    ("PUT", "/auth/password", {"current_password": ADA["password"], "new_password": NEW_PASSWORD}),
    ("POST", "/auth/logout", None),
    ("POST", "/auth/logout-all", None),
    ("GET", "/logins", None),
    ("POST", "/logins", EVENTORY_LOGIN),
    ("GET", "/logins/{id}", None),
    ("PUT", "/logins/{id}", {"color": "#000"}),
    ("DELETE", "/logins/{id}", None),
    ("POST", "/logins/{id}/session", None),
    ("GET", "/eventory/jobs/list", None),
    ("GET", "/multisite/jobs/list", None),
]


@pytest.mark.parametrize("make_header", TOKENS.values(), ids=TOKENS.keys())
def test_missing_or_bad_token_is_401_and_changes_nothing(
    app, client, ada_tokens, ada, ada_login, eventory, make_header
):
    headers = {"X-Eventory-Login": str(ada_login["id"])}
    if make_header is not None:
        headers["Authorization"] = make_header(app, ada_tokens)
    listed = ada_logins(client, ada)
    before = snapshot(app)
    eventory.reset()

    responses = {
        f"{method} {path}": client.open(path.format(id=ada_login["id"]), method=method, headers=headers, json=body)
        for method, path, body in PROTECTED
    }

    assert {route: r.status_code for route, r in responses.items()} == dict.fromkeys(responses, 401)
    for response in responses.values():
        assert_error(response, 401)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert eventory.requests == []
    assert snapshot(app) == before
    assert ada_logins(client, ada) == listed  # Ada's own token (the real refresh token's family) still works
    assert client.post("/auth/login", data=ADA).status_code == 200


# What each kind of refusal says (the same on every route the guard protects).
NO_TOKEN = ("no-header", "empty-header", "basic-scheme", "basic-with-the-real-token", "token-without-scheme")
DETAILS = {
    **dict.fromkeys(NO_TOKEN, "Log in first: this route needs an Authorization: Bearer token."),
    "expired": "Your session has expired; log in again.",
    "unknown-user": "The account for this token no longer exists; log in again.",
    "non-numeric-sub": "This token has been logged out; log in again.",
}


@pytest.mark.parametrize("case", TOKENS)
def test_each_refusal_says_why(app, client, ada_tokens, case):
    make_header = TOKENS[case]
    headers = {} if make_header is None else {"Authorization": make_header(app, ada_tokens)}
    expected = DETAILS.get(case, "The bearer token is not valid; log in again.")
    for method, path in (("GET", "/auth/me"), ("GET", "/logins"), ("GET", "/multisite/jobs/list")):
        response = client.open(path, method=method, headers=headers)
        assert (response.status_code, response.json["detail"]) == (401, expected), path


def _refreshed_at_once(live, times: int = 4) -> list:
    """A new login's refresh token presented `times` times at once."""
    live.post("/auth/register", json=ADA)
    pair = live.post("/auth/login", data=ADA).json()
    with ThreadPoolExecutor(times) as pool:
        return list(pool.map(lambda _n: refresh(live, pair["refresh_token"]), range(times)))


def test_two_tabs_refreshing_at_once_both_get_a_working_pair(make_app, serve):
    live = serve(make_app(REFRESH_GRACE_SECONDS=5))
    answers = _refreshed_at_once(live)
    assert [answer.status_code for answer in answers] == [200] * 4
    for answer in answers:
        tab = answer.json()
        assert live.get("/auth/me", headers=bearer(tab["access_token"])).status_code == 200
        assert refresh(live, tab["refresh_token"]).status_code == 200  # each tab goes on refreshing


def test_a_reuse_after_the_grace_window_still_ends_the_family(make_app, serve):
    live = serve(make_app(REFRESH_GRACE_SECONDS=1))
    live.post("/auth/register", json=ADA)
    pair = live.post("/auth/login", data=ADA).json()
    successor = refresh(live, pair["refresh_token"]).json()
    time.sleep(1.5)
    replayed = refresh(live, pair["refresh_token"])
    assert replayed.status_code == 401 and "ended" in replayed.json()["detail"]
    assert live.get("/auth/me", headers=bearer(successor["access_token"])).status_code == 401
    assert refresh(live, successor["refresh_token"]).status_code == 401


def test_with_no_grace_only_one_of_two_concurrent_refreshes_gets_a_pair(make_app, serve):
    live = serve(make_app(REFRESH_GRACE_SECONDS=0))
    answers = _refreshed_at_once(live)
    assert sorted(answer.status_code for answer in answers) == [200, 401, 401, 401]
