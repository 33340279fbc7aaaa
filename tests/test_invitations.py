"""Shares are invitations (issue 27): a login shared with an account reaches nothing until that
account accepts it; only it may accept or decline; a decline holds for a day; an account holds a
bounded number of unanswered invitations; and every step is in the grantee's audit too. Through
waitress and the fake Eventory, on whichever database the run uses."""

from __future__ import annotations

from datetime import timedelta

import flask_migrate
import pytest
from sqlalchemy import insert, select, update

from eventory_backend.auth.models import User
from eventory_backend.auth.services import hash_password, username_key
from eventory_backend.database import utcnow
from eventory_backend.extensions import db, migrate
from eventory_backend.logins.models import LoginShare, ShareDecline

from .helpers import ADA, BOB, EVENTORY_LOGIN, account, save_login, snapshot

CAROL = {"username": "carol", "password": "punched cards for the loom"}
INCOMING_FIELDS = {"id", "login_id", "label", "owner", "role", "created_at"}


def offer(live, owner, login_id, username="bob", role="use"):
    return live.post(f"/logins/{login_id}/shares", json={"username": username, "role": role}, headers=owner)


def incoming(live, headers) -> list[dict]:
    response = live.get("/shares/incoming", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def audit(live, headers) -> list[tuple]:
    response = live.get("/audit", params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    return [(e["action"], e["actor"], e["detail"]) for e in response.json()["events"]]


def reaches(live, headers, login_id) -> dict[str, int]:
    """What each route that uses a login answers `headers` for it."""
    return {
        "relay": live.get("/eventory/jobs/list", headers={**headers, "X-Eventory-Login": str(login_id)}).status_code,
        "session": live.post(f"/logins/{login_id}/session", headers=headers).status_code,
        "check": live.post(f"/logins/{login_id}/check", headers=headers).status_code,
        "logo": live.get(f"/logins/{login_id}/logo", headers=headers).status_code,
        "login": live.get(f"/logins/{login_id}", headers=headers).status_code,
        "chosen fan-out": live.get(f"/multisite/jobs/list?logins={login_id}", headers=headers).status_code,
    }


NOWHERE = {"relay": 404, "session": 404, "check": 404, "logo": 404, "login": 404, "chosen fan-out": 404}


def test_a_share_reaches_nothing_until_the_grantee_accepts_it(live, eventory):
    ada, bob = account(live, ADA), account(live, BOB)
    login_id = save_login(live, ada, label="My company (backup)")
    offered = offer(live, ada, login_id, role="manage")
    assert offered.status_code == 201, offered.text
    assert offered.json()["accepted"] is False and offered.json()["username"] == "bob"
    eventory.reset()

    # Pushed, not yet accepted: nowhere in Bob's logins, and no route reaches it.
    assert live.get("/logins", headers=bob).json() == []
    assert live.get("/multisite/jobs/list", headers=bob).json()["results"] == []
    assert reaches(live, bob, login_id) == NOWHERE
    assert eventory.requests == [] and eventory.login_attempts == 0
    (invitation,) = incoming(live, bob)
    assert set(invitation) == INCOMING_FIELDS
    assert (invitation["id"], invitation["login_id"], invitation["label"], invitation["owner"], invitation["role"]) == (
        offered.json()["id"],
        login_id,
        "My company (backup)",
        "ada",
        "manage",
    )
    assert EVENTORY_LOGIN["username"] not in str(invitation) and EVENTORY_LOGIN["password"] not in str(invitation)
    assert [s["accepted"] for s in live.get(f"/logins/{login_id}/shares", headers=ada).json()["shares"]] == [False]
    # Bob's audit tells him someone offered him a login.
    assert audit(live, bob) == [("share.grant", "ada", 'grantee="bob" role=manage')]

    accepted = live.post(f"/shares/{offered.json()['id']}/accept", headers=bob)
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["id"], accepted.json()["role"], accepted.json()["shared"]) == (login_id, "manage", True)
    assert [login["id"] for login in live.get("/logins", headers=bob).json()] == [login_id]
    assert reaches(live, bob, login_id) == {key: 200 for key in NOWHERE}
    assert incoming(live, bob) == []
    assert [s["accepted"] for s in live.get(f"/logins/{login_id}/shares", headers=ada).json()["shares"]] == [True]
    # Accepting again changes nothing and writes no second event.
    assert live.post(f"/shares/{offered.json()['id']}/accept", headers=bob).status_code == 200
    assert [event[0] for event in audit(live, bob)].count("share.accept") == 1
    assert ("share.accept", "bob", 'grantee="bob" role=manage') in audit(live, ada)


@pytest.mark.parametrize("who", ["owner", "stranger"])
def test_only_the_invited_account_accepts_or_declines(app, live, eventory, who):
    ada, bob, carol = account(live, ADA), account(live, BOB), account(live, CAROL)
    login_id = save_login(live, ada)
    share_id = offer(live, ada, login_id).json()["id"]
    headers = {"owner": ada, "stranger": carol}[who]
    before = snapshot(app)

    for response in (
        live.post(f"/shares/{share_id}/accept", headers=headers),
        live.request("DELETE", f"/shares/{share_id}", headers=headers),
    ):
        assert response.status_code == 404 and isinstance(response.json()["detail"], str)
    assert live.post(f"/shares/{share_id + 1000}/accept", headers=bob).status_code == 404
    assert live.post("/shares/abc/accept", headers=bob).status_code == 404
    assert live.post(f"/shares/{share_id}/accept").status_code == 401
    assert incoming(live, headers) == []
    assert snapshot(app) == before


def test_a_declined_invitation_goes_and_cannot_be_sent_again_for_a_day(app, live, eventory):
    ada, bob = account(live, ADA), account(live, BOB)
    login_id = save_login(live, ada)
    share_id = offer(live, ada, login_id).json()["id"]

    assert live.request("DELETE", f"/shares/{share_id}", headers=bob).status_code == 204
    assert incoming(live, bob) == [] and live.get("/logins", headers=bob).json() == []
    assert live.get(f"/logins/{login_id}/shares", headers=ada).json() == {"shares": []}
    assert ("share.decline", "bob", 'grantee="bob" role=use') in audit(live, ada)
    assert ("share.decline", "bob", 'grantee="bob" role=use') in audit(live, bob)

    before = snapshot(app)
    again = offer(live, ada, login_id)
    assert again.status_code == 409 and "declined" in again.json()["detail"]
    assert snapshot(app) == before
    assert offer(live, ada, save_login(live, ada, label="Another")).status_code == 201  # another login may be offered

    with app.app_context():
        db.session.execute(update(ShareDecline).values(declined_at=utcnow() - timedelta(hours=24, minutes=1)))
        db.session.commit()
    assert offer(live, ada, login_id).status_code == 201


def test_the_grantee_leaves_an_accepted_share_through_its_invitation_id(live, eventory):
    ada, bob = account(live, ADA), account(live, BOB)
    login_id = save_login(live, ada)
    share_id = offer(live, ada, login_id).json()["id"]
    assert live.post(f"/shares/{share_id}/accept", headers=bob).status_code == 200
    assert live.request("DELETE", f"/shares/{share_id}", headers=bob).status_code == 204
    assert reaches(live, bob, login_id) == NOWHERE
    assert ("share.revoke", "bob", 'grantee="bob" role=use') in audit(live, ada)
    assert offer(live, ada, login_id).status_code == 201  # leaving is not declining: it may be offered again


def test_an_account_holds_a_bounded_number_of_unanswered_invitations(make_app, serve, eventory):
    live = serve(make_app(MAX_PENDING_SHARES=3))
    ada, bob, carol = account(live, ADA), account(live, BOB), account(live, CAROL)
    adas = [save_login(live, ada, label=f"Ada {n}") for n in range(3)]
    carols = [save_login(live, carol, label=f"Carol {n}") for n in range(2)]
    for login_id in adas:
        assert offer(live, ada, login_id).status_code == 201
    refused = offer(live, carol, carols[0])
    assert refused.status_code == 429 and "more invitations" in refused.json()["detail"]
    assert [i["owner"] for i in incoming(live, bob)] == ["ada"] * 3
    # An answer makes room; accepted shares are not invitations.
    first = incoming(live, bob)[0]["id"]
    assert live.post(f"/shares/{first}/accept", headers=bob).status_code == 200
    assert offer(live, carol, carols[0]).status_code == 201
    assert offer(live, carol, carols[1]).status_code == 429


def test_shares_from_before_invitations_stay_accepted_and_a_downgrade_drops_pending_ones(make_app, eventory):
    app = make_app()
    client = app.test_client()
    ada, bob, carol = ({"Authorization": "Bearer " + _token(client, who)} for who in (ADA, BOB, CAROL))
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=ada).json["id"]
    to_bob = client.post(f"/logins/{login_id}/shares", json={"username": "bob", "role": "use"}, headers=ada).json
    client.post(f"/shares/{to_bob['id']}/accept", headers=bob)
    client.post(f"/logins/{login_id}/shares", json={"username": "carol", "role": "use"}, headers=ada)

    with app.app_context():
        flask_migrate.downgrade(directory=migrate.directory, revision="0007")
        with db.engine.connect() as connection:
            kept = connection.execute(select(LoginShare.__table__.c.id, LoginShare.__table__.c.grantee_id)).all()
        # The accepted share stays as a share of 0007 (which had no invitations); Carol's invitation went.
        assert kept == [(to_bob["id"], 2)]
        flask_migrate.upgrade(directory=migrate.directory)
        assert db.session.execute(select(LoginShare.accepted)).scalars().all() == [True]
    assert [login["id"] for login in client.get("/logins", headers=bob).json] == [login_id]
    assert client.get("/logins", headers=carol).json == []


def test_a_username_cannot_forge_an_audit_detail(app, live, eventory):
    # New names are letters, digits and . _ @ - only.
    refused = live.post("/auth/register", json={"username": "bob role=manage", "password": BOB["password"]})
    assert refused.status_code == 422 and "username" in refused.json()["errors"]
    # An account made before the rule keeps its name, and details quote it.
    with app.app_context():
        name = 'bob role=manage" x="y'
        db.session.execute(
            insert(User).values(username=name, username_key=username_key(name), password_hash=hash_password("x" * 20))
        )
        db.session.commit()
    legacy = account(live, {"username": name, "password": "x" * 20})
    ada = account(live, ADA)
    login_id = save_login(live, ada)
    share_id = offer(live, ada, login_id, name).json()["id"]
    assert live.post(f"/shares/{share_id}/accept", headers=legacy).status_code == 200
    details = {detail for action, _actor, detail in audit(live, ada) if action.startswith("share.")}
    assert details == {'grantee="bob role=manage\\" x=\\"y" role=use'}


def _token(client, who) -> str:
    client.post("/auth/register", json=who)
    return client.post("/auth/login", data=who).json["access_token"]
