"""Teams (issue 14): a login shared with other accounts, who use it without ever reading its
password; read-only logins; and the audit of what was done with them. Through waitress and the
fake Eventory. The refusals, one by one, are in test_teams_refusals.py."""

from __future__ import annotations

import logging
from datetime import timedelta

import flask_migrate
import pytest
from sqlalchemy import insert, select

from eventory_backend.audit.models import AuditEvent
from eventory_backend.database import utcnow
from eventory_backend.extensions import db, migrate
from eventory_backend.logins.models import EventoryLogin, LoginShare

from .helpers import ADA, BOB, EVENTORY_LOGIN, account, save_login, snapshot

CAROL = {"username": "carol", "password": "punched cards for the loom"}
SCAN = {"id": 7, "state": "packed"}


def share(live, owner, login_id, grantee, username, role="use"):
    """Share the login with `username`, who accepts it with their headers `grantee`; the share."""
    response = live.post(f"/logins/{login_id}/shares", json={"username": username, "role": role}, headers=owner)
    assert response.status_code == 201, response.text
    accepted = live.post(f"/shares/{response.json()['id']}/accept", headers=grantee)
    assert accepted.status_code == 200, accepted.text
    return response.json()


def brokered(live, headers, login_id, method="GET", path="/eventory/jobs/list", **kwargs):
    return live.request(method, path, headers={**headers, "X-Eventory-Login": str(login_id)}, **kwargs)


def audit(live, headers, **params) -> list[dict]:
    """Every audit event `headers` may see, following `next` to the end."""
    events, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = live.get("/audit", params=query, headers=headers)
        assert page.status_code == 200, page.text
        events += page.json()["events"]
        cursor = page.json()["next"]
        if cursor is None:
            return events


# --- shares ---------------------------------------------------------------------------------------


def test_a_grantee_uses_a_shared_login_without_the_password_appearing_anywhere(app, live, eventory, caplog):
    caplog.set_level(logging.DEBUG, logger="eventory_backend")
    ada, bob = account(live, ADA), account(live, BOB)
    login_id = save_login(live, ada)
    granted = share(live, ada, login_id, bob, "bob")
    assert granted["username"] == "bob" and granted["role"] == "use" and granted["login_id"] == login_id

    answers = []
    listing = live.get("/logins", headers=bob)
    answers.append(listing)
    (seen,) = listing.json()
    assert seen["id"] == login_id and seen["shared"] is True and seen["owner"] == "ada"
    assert seen["role"] == "use" and seen["share_id"] == granted["id"] and seen["username"] is None
    assert seen["label"] == EVENTORY_LOGIN["label"] and seen["read_only"] is False
    answers.append(relayed := brokered(live, bob, login_id))
    assert relayed.status_code == 200
    answers.append(written := brokered(live, bob, login_id, "PUT", "/eventory/pack-list-rentals/7?x=1", json=SCAN))
    assert written.status_code == 200 and written.json()["updated"] == SCAN
    answers.append(session := live.post(f"/logins/{login_id}/session", headers=bob))
    assert session.status_code == 200 and session.json()["organisation"] == "Org One"
    answers.append(fanned := live.get("/multisite/jobs/list", headers=bob))
    assert [entry["login_id"] for entry in fanned.json()["results"]] == [login_id]
    assert fanned.json()["results"][0]["status"] == 200
    answers.append(live.get(f"/logins/{login_id}", headers=bob))
    answers.append(live.get("/audit", headers=bob))

    password = EVENTORY_LOGIN["password"]
    for answer in answers:
        assert password not in answer.text
        assert EVENTORY_LOGIN["username"] not in answer.text  # a `use` grantee does not see it either
    assert password not in caplog.text
    assert password not in repr(snapshot(app))  # stored encrypted only
    # The owner sees the grantee's work; the grantee sees their own and the share offered to them,
    # not the owner's creation.
    assert [(e["action"], e["actor"]) for e in audit(live, ada)] == [
        ("session", "bob"),
        ("relay", "bob"),
        ("share.accept", "bob"),
        ("share.grant", "ada"),
        ("login.create", "ada"),
    ]
    assert [e["action"] for e in audit(live, bob)] == ["session", "relay", "share.accept", "share.grant"]


def test_a_manager_changes_the_login_and_sees_its_username_but_never_its_password(make_app, serve, eventory):
    live = serve(make_app(LOGINS_EXPOSE_PASSWORDS=True))
    ada, bob = account(live, ADA), account(live, BOB)
    login_id = save_login(live, ada)
    share(live, ada, login_id, bob, "bob", "manage")
    (own,) = live.get("/logins", headers=ada).json()
    assert own["password"] == EVENTORY_LOGIN["password"] and own["shared"] is False and own["role"] == "owner"

    changed = live.request("PUT", f"/logins/{login_id}", json={"label": "Warehouse", "read_only": True}, headers=bob)
    assert changed.status_code == 200, changed.text
    assert changed.json()["label"] == "Warehouse" and changed.json()["read_only"] is True
    (seen,) = live.get("/logins", headers=bob).json()
    assert seen["username"] == EVENTORY_LOGIN["username"] and seen["role"] == "manage"
    assert "password" not in seen
    assert [s["username"] for s in live.get(f"/logins/{login_id}/shares", headers=bob).json()["shares"]] == ["bob"]
    assert live.request("DELETE", f"/logins/{login_id}", headers=bob).status_code == 403
    assert (
        live.post(f"/logins/{login_id}/shares", json={"username": "ada", "role": "use"}, headers=bob).status_code == 403
    )
    (event,) = [e for e in audit(live, ada) if e["action"] == "login.update"]
    assert event["actor"] == "bob" and event["detail"] == "label, read_only"


def test_revoking_a_share_ends_access_at_once_on_every_instance(two_instances_on_sqlite, eventory):
    first, second = two_instances_on_sqlite
    ada, bob = account(first, ADA), account(first, BOB)
    login_id = save_login(first, ada)
    granted = share(first, ada, login_id, bob, "bob")
    for live in (first, second):  # each instance now holds an Eventory token for the login
        assert brokered(live, bob, login_id).status_code == 200

    assert first.request("DELETE", f"/logins/{login_id}/shares/{granted['id']}", headers=ada).status_code == 204
    eventory.reset()
    for live in (second, first):
        assert brokered(live, bob, login_id).status_code == 404
        assert live.post(f"/logins/{login_id}/session", headers=bob).status_code == 404
        assert live.get(f"/multisite/jobs/list?logins={login_id}", headers=bob).status_code == 404
        assert live.get("/logins", headers=bob).json() == []
        assert live.get(f"/logins/{login_id}/logo", headers=bob).status_code == 404
        assert live.post(f"/logins/{login_id}/check", headers=bob).status_code == 404
    assert eventory.requests == []  # no cached token, kept answer or logo served the former grantee
    assert brokered(second, ada, login_id).status_code == 200  # the owner keeps it


def test_a_grantee_leaves_a_share_and_deleting_either_account_ends_access(live, eventory):
    ada, bob, carol = account(live, ADA), account(live, BOB), account(live, CAROL)
    login_id = save_login(live, ada)
    to_bob, to_carol = share(live, ada, login_id, bob, "bob"), share(live, ada, login_id, carol, "carol")
    assert live.request("DELETE", f"/logins/{login_id}/shares/{to_carol['id']}", headers=bob).status_code == 403
    assert live.request("DELETE", f"/logins/{login_id}/shares/{to_bob['id']}", headers=bob).status_code == 204
    assert brokered(live, bob, login_id).status_code == 404

    assert brokered(live, carol, login_id).status_code == 200
    assert live.request("DELETE", "/auth/me", json={"password": ADA["password"]}, headers=ada).status_code == 204
    assert brokered(live, carol, login_id).status_code == 404
    assert live.get("/logins", headers=carol).json() == []


def test_a_deleted_grantee_account_takes_its_shares_with_it(app, live, eventory):
    ada, bob = account(live, ADA), account(live, BOB)
    login_id = save_login(live, ada)
    share(live, ada, login_id, bob, "bob")
    assert live.request("DELETE", "/auth/me", json={"password": BOB["password"]}, headers=bob).status_code == 204
    assert live.get(f"/logins/{login_id}/shares", headers=ada).json() == {"shares": []}
    with app.app_context():
        assert db.session.execute(select(LoginShare)).all() == []
    bob_again = account(live, BOB)  # a new account with the old name gets nothing of the old one's
    assert live.get("/logins", headers=bob_again).json() == []


def test_fan_out_includes_shared_logins_beside_ones_own(live, eventory):
    eventory.add_user("bert@example.com", "eventory-pass-2", "Org Two")
    ada, bob = account(live, ADA), account(live, BOB)
    adas = save_login(live, ada)
    bobs = save_login(live, bob, label="Bob's", username="bert@example.com", password="eventory-pass-2")
    share(live, ada, adas, bob, "bob")
    results = live.get("/multisite/user-info", headers=bob).json()["results"]
    assert {entry["login_id"]: entry["data"]["organizationName"] for entry in results} == {
        adas: "Org One",
        bobs: "Org Two",
    }


def test_a_manager_checks_the_shared_login_and_a_user_sees_its_health_and_logo(live, eventory):
    ada, bob, carol = account(live, ADA), account(live, BOB), account(live, CAROL)
    login_id = save_login(live, ada, read_only=True)  # a check signs in but hands no token out
    share(live, ada, login_id, bob, "bob")
    share(live, ada, login_id, carol, "carol", "manage")
    refused = live.post(f"/logins/{login_id}/check", headers=bob)
    assert refused.status_code == 403 and "owner and its managers" in refused.json()["detail"]
    assert eventory.login_attempts == 0
    checked = live.post(f"/logins/{login_id}/check", headers=carol)
    assert checked.status_code == 200, checked.text
    assert checked.json()["status"] == "ok" and checked.json()["shared"] and checked.json()["role"] == "manage"
    assert "access_token" not in checked.text and EVENTORY_LOGIN["password"] not in checked.text
    logo = live.get(checked.json()["logo_url"], headers=bob)
    assert logo.status_code == 200 and logo.content
    (entry,) = live.get("/multisite/jobs/list", headers=bob).json()["results"]
    assert (entry["login_id"], entry["login_status"], entry["status"]) == (login_id, "ok", 200)
    assert live.get("/logins", headers=ada).json()[0]["status"] == "ok"  # the owner sees the same health


# --- read-only logins -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_read_only_logins_write_is_refused_before_eventory_sees_anything(live, eventory, method):
    ada, bob = account(live, ADA), account(live, BOB)
    login_id = live.post("/logins", json={**EVENTORY_LOGIN, "read_only": True}, headers=ada).json()["id"]
    share(live, ada, login_id, bob, "bob", "manage")
    eventory.reset()
    for who in (ada, bob):
        refused = brokered(live, who, login_id, method, "/eventory/pack-list-rentals/7", json=SCAN)
        assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
        session = live.post(f"/logins/{login_id}/session", headers=who)
        assert session.status_code == 403 and "access_token" not in session.text
    assert eventory.requests == [] and eventory.login_attempts == 0
    assert brokered(live, bob, login_id).status_code == 200  # reads go on
    assert brokered(live, bob, login_id, "HEAD").status_code == 200
    refusals = [(e["actor"], e["action"], e["method"], e["status"]) for e in audit(live, ada)[:4]]
    assert refusals == [
        ("bob", "session", None, 403),
        ("bob", "relay", method, 403),
        ("ada", "session", None, 403),
        ("ada", "relay", method, 403),
    ]

    assert live.request("PUT", f"/logins/{login_id}", json={"read_only": False}, headers=bob).status_code == 200
    assert brokered(live, bob, login_id, method, "/eventory/pack-list-rentals/7", json=SCAN).status_code != 403


# --- the audit ------------------------------------------------------------------------------------


def test_every_audited_action_leaves_exactly_one_event_without_secrets_or_query_strings(live, eventory):
    ada, bob = account(live, ADA), account(live, BOB)
    login_id = save_login(live, ada)
    brokered(live, ada, login_id)  # a read: not recorded
    brokered(live, ada, login_id, "HEAD")  # nor this
    assert brokered(live, ada, login_id, "PUT", "/eventory/pack-list-rentals/7?token=query-secret", json=SCAN).ok
    assert brokered(live, ada, login_id, "POST", "/eventory/jobs/list").status_code == 404  # Eventory's answer
    assert live.post(f"/logins/{login_id}/session", headers=ada).ok
    granted = share(live, ada, login_id, bob, "bob")
    assert live.request("DELETE", f"/logins/{login_id}/shares/{granted['id']}", headers=ada).ok
    new_password = "another-eventory-pass"
    assert live.request("PUT", f"/logins/{login_id}", json={"password": new_password}, headers=ada).ok
    assert live.request("DELETE", f"/logins/{login_id}", headers=ada).ok

    events = audit(live, ada)
    assert [(e["action"], e["method"], e["path"], e["status"], e["detail"]) for e in events] == [
        ("login.delete", None, None, 204, None),
        ("login.update", None, None, 200, "password"),
        ("share.revoke", None, None, 204, 'grantee="bob" role=use'),
        ("share.accept", None, None, 200, 'grantee="bob" role=use'),
        ("share.grant", None, None, 201, 'grantee="bob" role=use'),
        ("session", None, None, 200, None),
        ("relay", "POST", "jobs/list", 404, None),
        ("relay", "PUT", "pack-list-rentals/7", 200, None),
        ("login.create", None, None, 201, None),
    ]
    assert {e["login_id"] for e in events} == {login_id}
    assert [e["actor"] for e in events if e["actor"] != "ada"] == ["bob"]  # the one who accepted
    assert {e["count"] for e in events} == {1}
    assert all(e["at"].endswith("+00:00") for e in events)
    text = str(events)
    for secret in ("query-secret", new_password, EVENTORY_LOGIN["password"], ada["Authorization"][7:]):
        assert secret not in text
    # The deleted login's events stay with its former owner, and ?login_id= still finds them.
    assert audit(live, ada, login_id=login_id) == events
    assert audit(live, ada, login_id=login_id + 1) == []


def test_audit_pages_are_complete_disjoint_and_newest_first(live, eventory):
    ada, bob, carol = account(live, ADA), account(live, BOB), account(live, CAROL)
    adas = save_login(live, ada)
    carols = save_login(live, carol)
    share(live, ada, adas, bob, "bob")
    for number in range(11):
        live.request("PUT", f"/logins/{adas}", json={"label": f"Org {number}"}, headers=ada)
        live.request("PUT", f"/logins/{carols}", json={"label": f"Org {number}"}, headers=carol)
    everything = audit(live, ada, limit=200)
    assert len(everything) == 14 and [e["id"] for e in everything] == sorted(
        (e["id"] for e in everything), reverse=True
    )

    for limit in (1, 2, 5, 13, 50):
        pages, cursor = [], None
        while True:
            page = live.get("/audit", params={"limit": limit, **({"cursor": cursor} if cursor else {})}, headers=ada)
            pages.append([e["id"] for e in page.json()["events"]])
            assert len(pages[-1]) <= limit
            cursor = page.json()["next"]
            if cursor is None:
                break
        flat = [event_id for page in pages for event_id in page]
        assert flat == [e["id"] for e in everything]  # complete, disjoint, in order
    # Bob owns nothing and sees only the share offered to him; Carol never sees Ada's events.
    assert [(e["action"], e["actor"]) for e in audit(live, bob)] == [("share.accept", "bob"), ("share.grant", "ada")]
    assert {e["login_id"] for e in audit(live, carol)} == {carols}


def test_expired_events_are_hidden_and_removed(make_app, serve, eventory):
    app = make_app(AUDIT_DAYS=1)
    live = serve(app)
    ada = account(live, ADA)
    login_id = save_login(live, ada)
    with app.app_context():
        old = {"actor_id": 1, "actor": "ada", "login_id": login_id, "owner_id": 1, "action": "login.update"}
        with db.engine.begin() as connection:
            connection.execute(insert(AuditEvent), [{**old, "at": utcnow() - timedelta(days=1, minutes=1)}])
    assert [e["action"] for e in audit(live, ada)] == ["login.create"]
    with app.app_context():
        actions = db.session.execute(select(AuditEvent.action)).scalars().all()
    assert actions == ["login.create"]  # the first read of this process removed it


# --- the database ---------------------------------------------------------------------------------


def test_shares_read_only_and_events_survive_a_restart_and_migrations_go_both_ways(make_app, eventory):
    app = make_app()
    client = app.test_client()
    ada = {"Authorization": "Bearer " + _token(client, ADA)}
    _token(client, BOB)
    login_id = client.post("/logins", json={**EVENTORY_LOGIN, "read_only": True}, headers=ada).json["id"]
    assert (
        client.post(f"/logins/{login_id}/shares", json={"username": "bob", "role": "use"}, headers=ada).status_code
        == 201
    )
    before = snapshot(app)

    restarted = make_app().test_client()  # AUTO_MIGRATE on an up-to-date database: nothing changes
    assert snapshot(app) == before
    assert restarted.get(f"/logins/{login_id}", headers=ada).json["read_only"] is True

    with app.app_context():
        flask_migrate.downgrade(directory=migrate.directory, revision="0005")
        with db.engine.connect() as connection:
            assert connection.execute(select(EventoryLogin.id)).scalars().all() == [login_id]
        flask_migrate.upgrade(directory=migrate.directory)
        (login,) = db.session.execute(select(EventoryLogin)).scalars()
        assert login.read_only is False  # what a login was before read-only logins existed
        assert db.session.execute(select(LoginShare)).all() == []
    fresh = make_app().test_client()
    assert (
        fresh.post(f"/logins/{login_id}/shares", json={"username": "bob", "role": "use"}, headers=ada).status_code
        == 201
    )


def _token(client, who) -> str:
    client.post("/auth/register", json=who)
    return client.post("/auth/login", data=who).json["access_token"]
