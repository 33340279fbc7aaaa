"""The audit stays cheap (issue 27): identical refusals by one actor within a minute are one event
with a count; GET /audit is rate-limited per account; and a page reads about the same number of
rows whether the table holds a hundred events or two hundred thousand, also with `?login_id=` of
someone else's login. The work is counted by the database itself (SQLite's virtual-machine steps,
PostgreSQL's rows read in the transaction, MariaDB's handler reads), never timed; the database
servers plan with up-to-date statistics, as their own upkeep keeps them."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, insert, literal, select, text, update

from eventory_backend.audit import services as audit_services
from eventory_backend.audit.models import AuditEvent
from eventory_backend.database import utcnow
from eventory_backend.extensions import db

from .helpers import ADA, BOB, EVENTORY_LOGIN, account, save_login

SCAN = {"id": 7, "state": "packed"}


def events(live, headers) -> list[dict]:
    response = live.get("/audit", params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["events"]


def shared_read_only(live):
    """Ada's read-only login, shared with Bob to `use` (accepted): Ada's and Bob's headers, its id."""
    ada, bob = account(live, ADA), account(live, BOB)
    login_id = save_login(live, ada, read_only=True)
    offered = live.post(f"/logins/{login_id}/shares", json={"username": "bob", "role": "use"}, headers=ada)
    assert live.post(f"/shares/{offered.json()['id']}/accept", headers=bob).status_code == 200
    return ada, bob, login_id


def write(live, headers, login_id, path="/eventory/pack-list-rentals/7"):
    return live.request("PUT", path, json=SCAN, headers={**headers, "X-Eventory-Login": str(login_id)})


def test_identical_refusals_within_a_minute_are_one_event_with_a_count(app, live, eventory):
    ada, bob, login_id = shared_read_only(live)
    for _ in range(30):
        assert write(live, bob, login_id).status_code == 403
    assert write(live, bob, login_id, "/eventory/pack-list-rentals/8").status_code == 403
    for _ in range(5):
        assert live.post(f"/logins/{login_id}/session", headers=bob).status_code == 403
    assert live.request("DELETE", "/eventory/jobs/1", headers={**bob, "X-Eventory-Login": str(login_id)}).ok is False
    assert eventory.requests == []

    refusals = [(e["action"], e["method"], e["path"], e["status"], e["count"]) for e in events(live, ada)][:3]
    assert refusals == [
        ("relay", "DELETE", "jobs/1", 403, 1),
        ("session", None, None, 403, 5),
        ("relay", "PUT", "pack-list-rentals/8", 403, 31),  # the latest path of the 31
    ]
    # Another actor's identical refusal is an event of its own.
    assert write(live, ada, login_id).status_code == 403
    assert [(e["actor"], e["count"]) for e in events(live, ada)][0] == ("ada", 1)

    # A minute after the last one, the same refusal starts a new event.
    with app.app_context():
        db.session.execute(update(AuditEvent).values(at=utcnow() - timedelta(minutes=2)))
        db.session.commit()
    assert write(live, bob, login_id).status_code == 403
    latest = events(live, ada)[0]
    assert (latest["actor"], latest["path"], latest["count"]) == ("bob", "pack-list-rentals/7", 1)


def test_refusals_with_a_new_path_each_time_or_alternating_kinds_do_not_flood_the_audit(live, eventory):
    ada, bob, login_id = shared_read_only(live)
    for number in range(40):
        method = ("PUT", "POST", "PATCH", "DELETE")[number % 4]
        assert (
            live.request(
                method, f"/eventory/jobs/{number}", json=SCAN, headers={**bob, "X-Eventory-Login": str(login_id)}
            ).status_code
            == 403
        )
        assert live.post(f"/logins/{login_id}/session", headers=bob).status_code == 403
    refusals = [e for e in events(live, ada) if e["status"] == 403]
    assert sorted((e["method"] or "-", e["count"]) for e in refusals) == [
        ("-", 40),
        ("DELETE", 10),
        ("PATCH", 10),
        ("POST", 10),
        ("PUT", 10),
    ]


def test_writes_eventory_answered_are_never_folded(live, eventory):
    ada = account(live, ADA)
    login_id = save_login(live, ada)
    for _ in range(3):
        assert write(live, ada, login_id).status_code == 200
    relays = [e for e in events(live, ada) if e["action"] == "relay"]
    assert [(e["status"], e["count"]) for e in relays] == [(200, 1)] * 3


def test_the_audit_is_rate_limited_per_account(make_app, serve, eventory):
    live = serve(make_app(RATELIMIT_ENABLED=True, RATELIMIT_AUDIT="3/minute"))
    ada, bob = account(live, ADA), account(live, BOB)
    for _ in range(3):
        assert live.get("/audit", headers=ada).status_code == 200
    refused = live.get("/audit", headers=ada)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert isinstance(refused.json()["detail"], str)
    assert live.get("/audit", headers=bob).status_code == 200  # per account


# --- what a page costs ------------------------------------------------------------------------------


READER, OTHER, OTHERS_LOGIN = 1, 2, 77
FEW, MANY = 100, 200_000


def _add_events(count: int, *, owner_id: int, login_id: int) -> None:
    """`count` relay events of `owner_id`'s login, made by its owner, in one statement."""
    numbers = select(literal(1).label("n")).cte("numbers", recursive=True)
    numbers = numbers.union_all(select(numbers.c.n + 1).where(numbers.c.n < count))
    rows = select(
        literal(utcnow(), AuditEvent.at.type),
        literal(owner_id),
        literal("someone"),
        literal(login_id),
        literal(owner_id),
        literal("relay"),
        literal("PUT"),
        literal("jobs/1"),
        literal(200),
        literal(1),
    ).select_from(numbers)
    columns = ["at", "actor_id", "actor", "login_id", "owner_id", "action", "method", "path", "status", "count"]
    if db.session.connection().dialect.name in ("mysql", "mariadb"):
        db.session.execute(text(f"SET SESSION max_recursive_iterations = {count}"))  # 1,000 by default
    db.session.execute(insert(AuditEvent).from_select(columns, rows))
    db.session.commit()
    _statistics_taken()


def _statistics_taken() -> None:
    """What a database server's own upkeep does after a bulk change (PostgreSQL's autovacuum,
    InnoDB's automatic statistics), done now rather than waited for: its planner chooses by them.
    SQLite has no such upkeep, and this server never runs ANALYZE on it."""
    dialect = db.session.connection().dialect.name
    if dialect == "postgresql":
        db.session.execute(text("ANALYZE audit_events"))
    elif dialect in ("mysql", "mariadb"):
        db.session.execute(text("ANALYZE TABLE audit_events")).all()
    db.session.commit()


def _rows_read(run) -> int:
    """What the database did to run `run()` in this session, as it counts its own work."""
    connection = db.session.connection()
    dialect = connection.dialect.name
    if dialect == "sqlite":
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        raw = connection.connection.dbapi_connection
        raw.set_progress_handler(count, 10)
        try:
            run()
        finally:
            raw.set_progress_handler(None, 10)
        return steps[0]
    if dialect == "postgresql":
        read = text(
            "SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0) FROM pg_stat_xact_user_tables "
            "WHERE relname = 'audit_events'"
        )
        before = int(db.session.execute(read).scalar_one())
        run()
        return int(db.session.execute(read).scalar_one()) - before
    reads = text("SHOW SESSION STATUS LIKE 'Handler_read%'")
    before = sum(int(value) for _name, value in db.session.execute(reads))
    run()
    return sum(int(value) for _name, value in db.session.execute(reads)) - before


@pytest.mark.parametrize(
    ("owner_id", "login_filter"),
    [
        pytest.param(READER, None, id="every-event-the-reader-may-see"),
        pytest.param(OTHER, OTHERS_LOGIN, id="login-id-of-someone-elses-login"),
    ],
)
def test_a_page_costs_the_same_with_a_hundred_or_two_hundred_thousand_events(app, owner_id, login_filter):
    with app.app_context():
        audit_services.purge_if_due()  # the hourly removal is not part of a page

        def page():
            return audit_services.events(READER, login_id=login_filter, limit=50, before=None)

        _add_events(FEW, owner_id=owner_id, login_id=OTHERS_LOGIN)
        found, _more = page()
        few = _rows_read(page)
        _add_events(MANY - FEW, owner_id=owner_id, login_id=OTHERS_LOGIN)
        assert db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == MANY
        found_many, _more = page()
        many = _rows_read(page)

    assert len(found) == (50 if owner_id == READER else 0) == len(found_many)
    assert few > 0
    assert many <= 1.5 * few, (few, many)


def test_recording_a_refusal_costs_the_same_with_a_hundred_or_two_hundred_thousand_events(app):
    """The flood of issue 27: an actor with a great many events on one login, none of them the
    refusal being recorded, so nothing folds and the lookup must not read them all."""
    refuser = SimpleNamespace(id=OTHER, username="someone")
    with app.app_context():
        audit_services.purge_if_due()

        def look_for_one_to_fold_into():  # what record_refusal does before it writes
            event = audit_services._event(refuser, "relay", OTHERS_LOGIN, READER, method="PUT", path="x", status=403)
            assert audit_services._folded(db.session.connection(), event) is False

        _add_events(FEW, owner_id=OTHER, login_id=OTHERS_LOGIN)
        few = _rows_read(look_for_one_to_fold_into)
        _add_events(MANY - FEW, owner_id=OTHER, login_id=OTHERS_LOGIN)
        many = _rows_read(look_for_one_to_fold_into)
    assert few > 0
    assert many <= 1.5 * few, (few, many)


def test_the_login_of_a_page_counts_its_own_refusals_only(live, eventory):
    """Folding never merges one login's refusals into another's event."""
    ada, bob, first = shared_read_only(live)
    second = save_login(live, ada, label="Second", read_only=True)
    offered = live.post(f"/logins/{second}/shares", json={"username": "bob", "role": "use"}, headers=ada)
    assert live.post(f"/shares/{offered.json()['id']}/accept", headers=bob).status_code == 200
    for login_id in (first, second, first):
        assert write(live, bob, login_id).status_code == 403
    refusals = {(e["login_id"], e["count"]) for e in events(live, ada) if e["status"] == 403}
    assert refusals == {(first, 2), (second, 1)}
    assert EVENTORY_LOGIN["password"] not in str(events(live, ada))
