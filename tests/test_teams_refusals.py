"""Teams, what they refuse: bad share bodies, shares and changes by someone not allowed to make
them, the password never reaching a grantee, bad audit queries, read-only logins refused before
Eventory sees anything, and a login the caller cannot see staying a 404 on every route.

Every refusal checks that the database did not change. The refusals share one app and team
(`bench`); what changes something, or runs under waitress, gets its own."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient

from eventory_backend import create_app
from eventory_backend.extensions import db
from eventory_backend.logins import services
from eventory_backend.logins.models import EventoryLogin

from .helpers import (
    ADA,
    BOB,
    EVENTORY_LOGIN,
    NOT_AN_OBJECT,
    UNREADABLE_JSON,
    as_json,
    assert_error,
    case,
    raw,
    read_login,
    register_and_login,
    snapshot,
)

CAROL = {"username": "carol", "password": "punched cards for the loom"}
DAN = {"username": "dan", "password": "a stranger with no shares at all"}
ERIN = {"username": "erin", "password": "registered and logged in only to accept"}
PAST_INT32 = 2**31
FERNET_PREFIX = "gAAAAA"  # every Fernet token starts so: no ciphertext either


def share(client, headers, login_id: int, username: str, role: str, grantee: dict) -> dict:
    """Share `login_id` with `username`, who accepts with their `grantee` headers; the 201's body."""
    response = client.post(f"/logins/{login_id}/shares", json={"username": username, "role": role}, headers=headers)
    assert response.status_code == 201, response.json
    accepted = client.post(f"/shares/{response.json['id']}/accept", headers=grantee)
    assert accepted.status_code == 200, accepted.json
    return response.json


def brokered(headers: dict, login_id: int) -> dict:
    return {**headers, "X-Eventory-Login": str(login_id)}


def answered(response) -> Response:
    """A live server's answer as the test client gives one, for `assert_error`."""
    return Response(response.content, status=response.status_code, headers=list(response.headers.items()))


def without_audit(tables: dict) -> dict:
    return {name: rows for name, rows in tables.items() if name != "audit_events"}


def _without_developer_settings(env: pytest.MonkeyPatch) -> None:
    # conftest.py's autouse fixture does this for each test, after module fixtures have run.
    for name in [name for name in os.environ if name.startswith("BACKEND_")]:
        env.delenv(name)


def _sqlite_app(folder: Path, path: Path, **settings) -> Flask:
    """An app on the SQLite file `path`, built outside any test (no developer settings apply)."""
    with pytest.MonkeyPatch.context() as env:
        _without_developer_settings(env)
        return create_app(
            {
                "TESTING": True,
                "INSTANCE_PATH": str(folder / "instance"),
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path.as_posix()}",
                "RATELIMIT_ENABLED": False,
                **settings,
            }
        )


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory) -> Path:
    """One SQLite file the migrations brought up to date, made once for this module."""
    folder = tmp_path_factory.mktemp("migrated")
    path = folder / "template.db"
    app = _sqlite_app(folder, path)
    with app.app_context():
        db.engine.dispose()
    return path


@pytest.fixture
def database_url(database_url, migrated_sqlite) -> str:
    """Each test's SQLite file starts as a copy of the migrated one: the schema the app migrates
    to, without running every migration again for each test (a third of a second each). An
    external database (TEST_DATABASE_URL) is left to conftest.py."""
    if database_url.startswith("sqlite:///"):
        shutil.copyfile(migrated_sqlite, database_url.removeprefix("sqlite:///"))
    return database_url


@pytest.fixture
def app(make_app, database_url):
    """The app; on SQLite that copy is up to date already, so no migration check at start."""
    return make_app(AUTO_MIGRATE=not database_url.startswith("sqlite:///"))


@dataclass(frozen=True)
class Team:
    """Ada's login shared with Bob (`use`) and Carol (`manage`); Dan has no share of any login;
    Erin has a `use` share of Ada's other login only. Every share is accepted."""

    login_id: int
    owner: dict
    user: dict
    manager: dict
    stranger: dict
    use_share: int
    manage_share: int
    other_login: int
    other_share: int


def make_team(client) -> Team:
    ada, bob, carol, dan, erin = (register_and_login(client, who) for who in (ADA, BOB, CAROL, DAN, ERIN))
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=ada).json["id"]
    use = share(client, ada, login_id, BOB["username"], "use", bob)
    manage = share(client, ada, login_id, CAROL["username"], "manage", carol)
    other_login = client.post("/logins", json={**EVENTORY_LOGIN, "label": "Org Two"}, headers=ada).json["id"]
    other = share(client, ada, other_login, ERIN["username"], "use", erin)
    return Team(login_id, ada, bob, carol, dan, use["id"], manage["id"], other_login, other["id"])


@pytest.fixture
def team(client) -> Team:
    return make_team(client)


class Bench(NamedTuple):
    """An app, its test client, and a team on it."""

    app: Flask
    client: FlaskClient
    team: Team


@pytest.fixture(scope="module")
def bench(tmp_path_factory, migrated_sqlite, fake_eventory) -> Iterator[Bench]:
    """One app and team for this module's refusals that change nothing (each test still proves
    that, with a snapshot before and after): some hundred apps fewer to build. Always on SQLite,
    even when TEST_DATABASE_URL is set, since conftest.py empties that database for every test."""
    folder = tmp_path_factory.mktemp("bench")
    path = folder / "bench.db"
    shutil.copyfile(migrated_sqlite, path)
    app = _sqlite_app(folder, path, EVENTORY_URL=fake_eventory.url, BCRYPT_LOG_ROUNDS=4, AUTO_MIGRATE=False)
    client = app.test_client()
    yield Bench(app, client, make_team(client))
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# --- POST /logins/<id>/shares: bad bodies ---------------------------------------------------------


GOOD_SHARE = {"username": ERIN["username"], "role": "use"}


def share_body(**fields):
    return as_json({**GOOD_SHARE, **fields})


MALFORMED_SHARE_BODIES = [
    *UNREADABLE_JSON,
    *NOT_AN_OBJECT,
    case(as_json({}), 422, "username", id="empty-object"),
    case(as_json({"role": "use"}), 422, "username", id="missing-username"),
    case(as_json({"username": "erin"}), 422, "role", id="missing-role"),
    case(share_body(role="owner"), 422, "role", id="role-owner"),
    case(share_body(role="admin"), 422, "role", id="role-admin"),
    case(share_body(role="USE"), 422, "role", id="role-upper-case"),
    case(share_body(role=" use"), 422, "role", id="role-leading-space"),
    case(share_body(role=""), 422, "role", id="role-empty"),
    case(share_body(role=None), 422, "role", id="role-null"),
    case(share_body(role=1), 422, "role", id="role-number"),
    case(share_body(role=["use"]), 422, "role", id="role-list"),
    case(share_body(username=42), 422, "username", id="username-number"),
    case(share_body(username=None), 422, "username", id="username-null"),
    case(share_body(username=["erin"]), 422, "username", id="username-list"),
    case(share_body(username={"name": "erin"}), 422, "username", id="username-object"),
    case(share_body(username=""), 422, "username", id="username-empty"),
    case(share_body(username="   "), 422, "username", id="username-whitespace-only"),
    case(share_body(username="e" * 65), 422, "username", id="username-65-chars"),
    case(share_body(username="e" * 10_000), 422, "username", id="username-10000-chars"),
    case(share_body(username="er\x00in"), 422, "username", id="username-nul"),
    case(share_body(username="erin\x00"), 422, "username", id="username-trailing-nul"),
    case(share_body(username="er\nin"), 422, "username", id="username-newline"),
    case(share_body(username="\x1b[31merin"), 422, "username", id="username-escape"),
    case(share_body(username="er\x7fin"), 422, "username", id="username-delete-char"),
    case(raw('{"username": "er\\ud800in", "role": "use"}'), (400, 422), "username", id="username-lone-surrogate"),
    case(share_body(login_id=2), 422, "login_id", id="unknown-field-login_id"),
    case(share_body(grantee_id=5), 422, "grantee_id", id="unknown-field-grantee_id"),
    case(share_body(id=99), 422, "id", id="unknown-field-id"),
    case(share_body(owner="bob"), 422, "owner", id="unknown-field-owner"),
]


SHARE_REFUSALS = [
    case(share_body(username="nobody"), 404, id="unknown-account"),
    case(share_body(username="e" * 64), 404, id="unknown-64-char-account"),
    case(share_body(username="ada"), 422, "username", id="yourself"),
    case(share_body(username=" ADA "), 422, "username", id="yourself-upper-case-with-spaces"),
    case(share_body(username="\tAda\n"), 422, "username", id="yourself-tab-and-newline-around"),
    case(share_body(username="\uff41\uff44\uff41", role="manage"), 422, "username", id="yourself-fullwidth"),
    case(share_body(username="bob"), 409, id="existing-use-share-again"),
    case(share_body(username=" BOB ", role="manage"), 409, id="existing-share-other-role-other-case"),
    case(share_body(username="carol", role="use"), 409, id="existing-manage-share-as-use"),
]


@pytest.mark.parametrize(("kwargs", "status", "field"), MALFORMED_SHARE_BODIES + SHARE_REFUSALS)
def test_a_bad_share_or_one_with_an_unknown_account_yourself_or_a_grantee_is_refused(bench, kwargs, status, field):
    app, client, team = bench
    listed = client.get(f"/logins/{team.login_id}/shares", headers=team.owner).json
    before = snapshot(app)

    assert_error(client.post(f"/logins/{team.login_id}/shares", headers=team.owner, **kwargs), status, field)

    assert snapshot(app) == before
    assert client.get(f"/logins/{team.login_id}/shares", headers=team.owner).json == listed


# Everyone but the owner: grantees are refused (403), a stranger cannot see the login at all (404).
NOT_THE_OWNER = [
    pytest.param("user", 403, id="use-grantee"),
    pytest.param("manager", 403, id="manage-grantee"),
    pytest.param("stranger", 404, id="stranger"),
]


@pytest.mark.parametrize(("who", "status"), NOT_THE_OWNER)
def test_only_the_owner_shares(bench, who, status):
    app, client, team = bench
    before = snapshot(app)
    missing = client.post(f"/logins/{team.login_id + 1000}/shares", json=GOOD_SHARE, headers=getattr(team, who))

    body = assert_error(
        client.post(f"/logins/{team.login_id}/shares", json=GOOD_SHARE, headers=getattr(team, who)), status
    )

    if status == 404:
        assert body == missing.json  # as unknown as a missing id
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "login_id",
    [pytest.param(1000, id="missing"), pytest.param(PAST_INT32, id="past-2**31"), pytest.param(10**20, id="10**20")],
)
def test_sharing_a_login_that_does_not_exist_is_404(bench, login_id):
    app, client, team = bench
    before = snapshot(app)

    assert_error(client.post(f"/logins/{login_id}/shares", json=GOOD_SHARE, headers=team.owner), 404)

    assert snapshot(app) == before


# --- GET /logins/<id>/shares ----------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "manager"])
def test_owner_and_manager_list_the_shares(bench, who):
    _app, client, team = bench
    response = client.get(f"/logins/{team.login_id}/shares", headers=getattr(team, who))

    assert response.status_code == 200, response.json
    shares = response.json["shares"]
    assert [(s["id"], s["login_id"], s["username"], s["role"]) for s in shares] == [
        (team.use_share, team.login_id, "bob", "use"),
        (team.manage_share, team.login_id, "carol", "manage"),
    ]
    assert all(set(s) == {"id", "login_id", "username", "role", "accepted", "created_at"} for s in shares)
    assert all(s["accepted"] is True for s in shares)


@pytest.mark.parametrize(
    ("who", "status"),
    [pytest.param("user", 403, id="use-grantee"), pytest.param("stranger", 404, id="stranger")],
)
def test_use_grantee_and_stranger_do_not_see_the_shares(bench, who, status):
    app, client, team = bench
    before = snapshot(app)

    assert_error(client.get(f"/logins/{team.login_id}/shares", headers=getattr(team, who)), status)

    assert snapshot(app) == before


# --- DELETE /logins/<id>/shares/<share_id> -------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "which", "leaver"),
    [
        pytest.param("owner", "use_share", "user", id="owner-revokes-use"),
        pytest.param("owner", "manage_share", "manager", id="owner-revokes-manage"),
        pytest.param("user", "use_share", "user", id="use-grantee-leaves"),
        pytest.param("manager", "manage_share", "manager", id="manager-leaves"),
    ],
)
def test_owner_revokes_and_grantee_leaves_a_share(client, team, who, which, leaver):
    share_id = getattr(team, which)

    response = client.delete(f"/logins/{team.login_id}/shares/{share_id}", headers=getattr(team, who))

    assert response.status_code == 204, response.get_data(as_text=True)
    assert_error(client.get(f"/logins/{team.login_id}", headers=getattr(team, leaver)), 404)
    remaining = client.get(f"/logins/{team.login_id}/shares", headers=team.owner).json["shares"]
    assert share_id not in [s["id"] for s in remaining] and len(remaining) == 1
    assert_error(client.delete(f"/logins/{team.login_id}/shares/{share_id}", headers=team.owner), 404)


SHARE_DELETE_REFUSALS = [
    pytest.param("manager", "use_share", 403, id="manager-revokes-another-accounts-share"),
    pytest.param("user", "manage_share", 403, id="use-grantee-revokes-another-accounts-share"),
    pytest.param("stranger", "use_share", 404, id="stranger-revokes-a-use-share"),
    pytest.param("stranger", "manage_share", 404, id="stranger-revokes-a-manage-share"),
    pytest.param("owner", "unknown", 404, id="owner-unknown-share-id"),
    pytest.param("owner", "past-2**31", 404, id="owner-share-id-past-2**31"),
    pytest.param("owner", "other-login", 404, id="owner-share-id-of-another-login"),
    pytest.param("user", "other-login", 404, id="use-grantee-share-id-of-another-login"),
]


@pytest.mark.parametrize(("who", "which", "status"), SHARE_DELETE_REFUSALS)
def test_share_deletion_not_allowed_is_refused_and_changes_nothing(bench, who, which, status):
    app, client, team = bench
    share_ids = {
        "use_share": team.use_share,
        "manage_share": team.manage_share,
        "unknown": 999,
        "past-2**31": PAST_INT32,
        "other-login": team.other_share,
    }
    listed = client.get(f"/logins/{team.login_id}/shares", headers=team.owner).json
    before = snapshot(app)

    path = f"/logins/{team.login_id}/shares/{share_ids[which]}"
    assert_error(client.delete(path, headers=getattr(team, who)), status)

    assert snapshot(app) == before
    assert client.get(f"/logins/{team.login_id}/shares", headers=team.owner).json == listed


def test_leaving_a_share_by_way_of_another_login_is_404(bench):
    """Bob's share id is real, but not on a login he can see: the path's login decides."""
    app, client, team = bench
    before = snapshot(app)

    assert_error(client.delete(f"/logins/{team.other_login}/shares/{team.use_share}", headers=team.user), 404)
    assert_error(client.delete(f"/logins/{team.other_login}/shares/{team.use_share}", headers=team.owner), 404)

    assert snapshot(app) == before


# --- PUT and DELETE /logins/<id>: read_only, and who may change or delete -------------------------


NOT_A_FLAG = [
    pytest.param("yes", id="string-yes"),
    pytest.param("true", id="string-true"),
    pytest.param("false", id="string-false"),
    pytest.param("", id="empty-string"),
    pytest.param(1, id="one"),
    pytest.param(0, id="zero"),
    pytest.param(None, id="null"),
    pytest.param([True], id="list"),
    pytest.param({"value": True}, id="object"),
]


@pytest.mark.parametrize("value", NOT_A_FLAG)
def test_read_only_other_than_json_true_or_false_is_422_on_create_and_edit(bench, value):
    app, client, team = bench
    unchanged = read_login(client, team.owner, team.login_id)
    before = snapshot(app)

    responses = {
        "POST": client.post("/logins", json={**EVENTORY_LOGIN, "read_only": value}, headers=team.owner),
        "PUT": client.put(f"/logins/{team.login_id}", json={"read_only": value}, headers=team.owner),
        "PUT with label": client.put(
            f"/logins/{team.login_id}", json={"label": "X", "read_only": value}, headers=team.owner
        ),
        "manager's PUT": client.put(f"/logins/{team.login_id}", json={"read_only": value}, headers=team.manager),
    }

    for response in responses.values():
        assert_error(response, 422, "read_only")
    assert snapshot(app) == before
    assert read_login(client, team.owner, team.login_id) == unchanged


@pytest.mark.parametrize(
    ("who", "status"),
    [pytest.param("user", 403, id="use-grantee"), pytest.param("stranger", 404, id="stranger")],
)
@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"label": "Taken over"}, id="label"),
        pytest.param({"password": "not-the-owners-choice"}, id="password"),
        pytest.param({"read_only": True}, id="read_only"),
    ],
)
def test_use_grantee_and_stranger_do_not_change_the_login(bench, who, status, fields):
    app, client, team = bench
    unchanged = read_login(client, team.owner, team.login_id)
    before = snapshot(app)

    assert_error(client.put(f"/logins/{team.login_id}", json=fields, headers=getattr(team, who)), status)

    assert snapshot(app) == before
    assert read_login(client, team.owner, team.login_id) == unchanged


def test_a_manager_changes_label_password_and_read_only(app, client, team):
    new_password = "a-password-the-manager-chose"

    response = client.put(
        f"/logins/{team.login_id}",
        json={"label": "Warehouse", "password": new_password, "read_only": True},
        headers=team.manager,
    )

    assert response.status_code == 200, response.json
    assert response.json["label"] == "Warehouse" and response.json["read_only"] is True
    assert response.json["role"] == "manage" and response.json["shared"] is True
    assert new_password not in response.get_data(as_text=True)
    for who in (team.owner, team.manager, team.user):
        seen = read_login(client, who, team.login_id)
        assert (seen["label"], seen["read_only"]) == ("Warehouse", True)
    with app.app_context():
        assert services.stored_password(db.session.get(EventoryLogin, team.login_id)) == new_password
    event = client.get(f"/audit?login_id={team.login_id}&limit=1", headers=team.owner).json["events"][0]
    assert (event["action"], event["actor"]) == ("login.update", "carol")
    assert new_password not in str(event)


@pytest.mark.parametrize(("who", "status"), NOT_THE_OWNER)
def test_only_the_owner_deletes_the_login(bench, who, status):
    app, client, team = bench
    unchanged = read_login(client, team.owner, team.login_id)
    before = snapshot(app)

    assert_error(client.delete(f"/logins/{team.login_id}", headers=getattr(team, who)), status)

    assert snapshot(app) == before
    assert read_login(client, team.owner, team.login_id) == unchanged


def test_the_owner_deletes_the_login_and_its_shares_end(client, team):
    assert client.delete(f"/logins/{team.login_id}", headers=team.owner).status_code == 204
    for who in (team.user, team.manager):
        assert_error(client.get(f"/logins/{team.login_id}", headers=who), 404)
        assert client.get("/logins", headers=who).json == []


# --- a grantee never receives the password ------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "username"),
    [pytest.param("use", None, id="use-grantee"), pytest.param("manage", "anna@example.com", id="manage-grantee")],
)
def test_a_grantee_never_receives_the_password(make_app, database_url, role, username):
    app = make_app(LOGINS_EXPOSE_PASSWORDS=True, AUTO_MIGRATE=not database_url.startswith("sqlite:///"))
    client = app.test_client()
    ada, bob = register_and_login(client, ADA), register_and_login(client, BOB)
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=ada).json["id"]
    bobs_own = client.post(
        "/logins", json={**EVENTORY_LOGIN, "label": "Bob Org", "password": "bobs-own-pw"}, headers=bob
    ).json["id"]
    share_id = share(client, ada, login_id, "bob", role, bob)["id"]
    secret = EVENTORY_LOGIN["password"]

    owners = client.get("/logins", headers=ada).json
    assert [(s["id"], s["password"], s["shared"], s["role"]) for s in owners] == [(login_id, secret, False, "owner")]

    listing = client.get("/logins", headers=bob)
    assert [(s["id"], s["shared"]) for s in listing.json] == [(login_id, True), (bobs_own, False)]
    assert listing.json[1]["password"] == "bobs-own-pw"  # his own, as the server exposes them
    one = client.get(f"/logins/{login_id}", headers=bob)
    for seen in (listing.json[0], one.json):
        assert seen["shared"] is True and seen["owner"] == "ada"
        assert (seen["role"], seen["share_id"], seen["username"]) == (role, share_id, username)
        assert "password" not in seen or seen["password"] is None
    answers = {
        "GET /logins": listing,
        "GET /logins/<id>": one,
        "GET /logins/<id>/shares": client.get(f"/logins/{login_id}/shares", headers=bob),
        "PUT /logins/<id>": client.put(f"/logins/{login_id}", json={"color": "#00ff00"}, headers=bob),
        "POST /logins/<id>/shares": client.post(f"/logins/{login_id}/shares", json=GOOD_SHARE, headers=bob),
        "DELETE /logins/<id>": client.delete(f"/logins/{login_id}", headers=bob),
        "GET /audit": client.get("/audit", headers=bob),
    }
    for route, response in answers.items():
        text = response.get_data(as_text=True)
        assert secret not in text, route
        assert FERNET_PREFIX not in text, route


# --- GET /audit: bad queries ---------------------------------------------------------------------


BAD_AUDIT_QUERIES = [
    pytest.param("limit=0", "limit", id="limit-0"),
    pytest.param("limit=201", "limit", id="limit-201"),
    pytest.param("limit=-1", "limit", id="limit-minus-1"),
    pytest.param("limit=abc", "limit", id="limit-word"),
    pytest.param("limit=1.5", "limit", id="limit-decimal"),
    pytest.param("limit=", "limit", id="limit-empty"),
    pytest.param("limit=99999999999999999999", "limit", id="limit-twenty-nines"),
    pytest.param("cursor=abc", "cursor", id="cursor-word"),
    pytest.param("cursor=-1", "cursor", id="cursor-minus-1"),
    pytest.param("cursor=", "cursor", id="cursor-empty"),
    pytest.param("cursor=99999999999", "cursor", id="cursor-past-2**31"),
    pytest.param("cursor=1.0", "cursor", id="cursor-decimal"),
    pytest.param("cursor=%EF%BC%91", "cursor", id="cursor-fullwidth-digit"),
    pytest.param("login_id=x", "login_id", id="login_id-word"),
    pytest.param("login_id=-1", "login_id", id="login_id-minus-1"),
    pytest.param("login_id=99999999999", "login_id", id="login_id-past-2**31"),
    pytest.param("login_id=", "login_id", id="login_id-empty"),
    pytest.param("login_id=1.0", "login_id", id="login_id-decimal"),
    # An id is ASCII digits everywhere else (web/converters.py: parse_id; /logins/<id> answers 404).
    pytest.param("login_id=%D9%A1", "login_id", id="login_id-arabic-indic-1"),
    pytest.param("login_id=%EF%BC%91", "login_id", id="login_id-fullwidth-1"),
    pytest.param("login_id=%2B1", "login_id", id="login_id-plus-sign"),
    pytest.param("login_id=%201%20", "login_id", id="login_id-spaces-around"),
    pytest.param("page=2", "page", id="unknown-parameter-page"),
    pytest.param("limit=5&owner_id=1", "owner_id", id="unknown-parameter-owner_id"),
]


@pytest.mark.parametrize(("query", "field"), BAD_AUDIT_QUERIES)
def test_bad_audit_query_is_422(bench, query, field):
    app, client, team = bench
    before = snapshot(app)

    assert_error(client.get(f"/audit?{query}", headers=team.owner), 422, field)

    assert snapshot(app) == before


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer not-a-token"}, id="bad-token"),
        pytest.param({"Authorization": "Basic YWRhOnB3"}, id="basic-auth"),
    ],
)
def test_audit_without_a_valid_token_is_401(bench, headers):
    assert_error(bench.client.get("/audit", headers=headers), 401)


def test_the_audit_shows_grantees_and_strangers_only_their_own_actions(client, team):
    """The owner's events (the login made, the shares granted) stay hers, but for the share each
    grantee was offered; a refused change is no event."""
    assert client.put(f"/logins/{team.login_id}", json={"label": "Nope"}, headers=team.user).status_code == 403
    assert client.put(f"/logins/{team.login_id}", json={"label": "Warehouse"}, headers=team.manager).status_code == 200

    def audit(headers, query=""):
        response = client.get(f"/audit{query}", headers=headers)
        assert response.status_code == 200, response.json
        return response.json["events"]

    bobs_share = [("bob", "share.accept", 'grantee="bob" role=use'), ("ada", "share.grant", 'grantee="bob" role=use')]
    assert [(e["actor"], e["action"], e["detail"]) for e in audit(team.user)] == bobs_share
    assert [
        (e["actor"], e["action"], e["detail"]) for e in audit(team.user, f"?login_id={team.login_id}")
    ] == bobs_share
    assert audit(team.stranger) == [] and audit(team.stranger, f"?login_id={team.login_id}") == []
    assert [(e["actor"], e["action"]) for e in audit(team.manager)] == [
        ("carol", "login.update"),
        ("carol", "share.accept"),
        ("ada", "share.grant"),
    ]
    assert [(e["actor"], e["action"]) for e in audit(team.owner, f"?login_id={team.login_id}")] == [
        ("carol", "login.update"),
        ("carol", "share.accept"),
        ("ada", "share.grant"),
        ("bob", "share.accept"),
        ("ada", "share.grant"),
        ("ada", "login.create"),
    ]


# --- read-only logins, through waitress and the fake Eventory -----------------------------------


@pytest.fixture
def read_only_login(client, ada, bob) -> int:
    """Ada's read-only login, shared with Bob to `use`."""
    response = client.post("/logins", json={**EVENTORY_LOGIN, "read_only": True}, headers=ada)
    assert response.status_code == 201, response.json
    assert response.json["read_only"] is True
    share(client, ada, response.json["id"], BOB["username"], "use", bob)
    return response.json["id"]


WHO = [pytest.param("ada", id="owner"), pytest.param("bob", id="use-grantee")]


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_write_with_a_read_only_login_is_403_before_eventory_sees_anything(
    request, app, live, eventory, ada, read_only_login, who, method
):
    headers = request.getfixturevalue(who)
    before = snapshot(app)
    eventory.reset()

    response = live.request(
        method,
        "/eventory/pack-list-rentals/1?secret=query-value",
        json={"packed": 3},
        headers=brokered(headers, read_only_login),
    )

    assert_error(answered(response), 403)
    assert eventory.requests == [] and eventory.login_attempts == 0
    after = snapshot(app)
    assert without_audit(after) == without_audit(before)
    assert len(after["audit_events"]) == len(before["audit_events"]) + 1  # the refusal, recorded once
    event = live.get(f"/audit?login_id={read_only_login}&limit=1", headers=ada).json()["events"][0]
    assert (event["action"], event["method"], event["status"]) == ("relay", method, 403)
    assert event["actor"] == who and "query-value" not in str(event)


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_read_with_a_read_only_login_still_works(request, app, live, eventory, read_only_login, who, method):
    headers = request.getfixturevalue(who)

    response = live.request(method, "/eventory/jobs/list", headers=brokered(headers, read_only_login))

    assert response.status_code == 200, response.text
    assert [(m, p) for m, p, _h in eventory.requests if p != "/login-json"] == [(method, "/jobs/list")]
    # With an Eventory token now cached for the login, a write is still refused before it is sent.
    eventory.reset()
    refused = live.request("PUT", "/eventory/pack-list-rentals/1", json={}, headers=brokered(headers, read_only_login))
    assert_error(answered(refused), 403)
    assert eventory.requests == []


@pytest.mark.parametrize("who", WHO)
def test_no_eventory_session_is_handed_out_for_a_read_only_login(request, app, live, eventory, read_only_login, who):
    headers = request.getfixturevalue(who)
    before = snapshot(app)
    eventory.reset()

    response = live.post(f"/logins/{read_only_login}/session", headers=headers)

    body = assert_error(answered(response), 403)
    assert set(body) == {"detail"} and "access_token" not in response.text
    assert eventory.requests == [] and eventory.login_attempts == 0
    assert without_audit(snapshot(app)) == without_audit(before)


# --- a stranger's use of the id: 404 on every route ---------------------------------------------


STRANGER_ROUTES = [
    pytest.param("GET", "/eventory/jobs/list", True, id="relay-get"),
    pytest.param("PUT", "/eventory/pack-list-rentals/1", True, id="relay-put"),
    pytest.param("POST", "/logins/{id}/session", False, id="session"),
    pytest.param("GET", "/multisite/jobs/list?logins={id}", False, id="multisite"),
]


@pytest.mark.parametrize("read_only", [False, True], ids=["writable", "read-only"])
@pytest.mark.parametrize(("method", "path", "via_header"), STRANGER_ROUTES)
def test_a_stranger_using_the_logins_id_gets_404_and_eventory_sees_nothing(
    app, client, live, eventory, ada, bob, read_only, method, path, via_header
):
    login_id = client.post("/logins", json={**EVENTORY_LOGIN, "read_only": read_only}, headers=ada).json["id"]
    dan = register_and_login(client, DAN)
    share(client, ada, login_id, BOB["username"], "use", bob)
    before = snapshot(app)
    eventory.reset()

    headers = brokered(dan, login_id) if via_header else dan
    response = live.request(method, path.format(id=login_id), headers=headers)

    assert_error(answered(response), 404)
    assert eventory.requests == [] and eventory.login_attempts == 0
    assert snapshot(app) == before


def test_a_strangers_fan_out_leaves_out_logins_shared_with_others(app, client, live, eventory, ada, bob):
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=ada).json["id"]
    dan = register_and_login(client, DAN)
    share(client, ada, login_id, BOB["username"], "use", bob)
    eventory.reset()

    response = live.get("/multisite/jobs/list", headers=dan)

    assert response.status_code == 200, response.text
    assert response.json()["results"] == []
    assert eventory.requests == [] and eventory.login_attempts == 0
