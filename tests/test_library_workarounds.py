"""Each place the backend goes under a library's public API (see bench/README.md for why) has a
test here that fails if the library's behaviour underneath changes, so an upgrade cannot break
it silently."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
import requests
from flask_jwt_extended import decode_token
from limits.storage import MemoryStorage

from eventory_backend.auth.guard import REVOCATION_CHECK
from eventory_backend.auth.models import RevokedToken
from eventory_backend.extensions import db
from eventory_backend.logins import services as logins
from eventory_backend.logins.models import LoginShare
from eventory_backend.proxy.unmerged_request import new_session, prepare, send_prepared
from eventory_backend.ratelimit.memory_sweeper import SWEEP_SECONDS, sweep_in_one_thread

from .helpers import ADA, BOB, EVENTORY_LOGIN, register_and_login

# --- proxy/unmerged_request.py: requests prepared without the session's merge -------------------


@pytest.mark.parametrize(
    ("method", "url", "headers", "data"),
    [
        ("GET", "http://127.0.0.1:9/jobs/list?a=1&a=2", {"Accept": "application/json"}, None),
        ("POST", "http://127.0.0.1:9/login-json", {"Accept": "application/json"}, {"username": "u", "password": "p"}),
        ("PUT", "http://127.0.0.1:9/pack-list-rentals/7", {"Content-Type": "application/json"}, b'{"a": 1}'),
        ("DELETE", "http://127.0.0.1:9/x", {}, None),
    ],
)
def test_a_request_prepared_alone_is_what_the_session_would_prepare(method, url, headers, data):
    session = new_session(pool_size=4)
    ours = prepare(method, url, headers, data)
    theirs = session.prepare_request(requests.Request(method, url, headers=headers, data=data))
    assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
    assert dict(ours.headers) == dict(theirs.headers), "requests' Session now adds something to every request"
    assert theirs.hooks == ours.hooks


@pytest.mark.parametrize(
    ("method", "path", "data", "stream"),
    [
        ("GET", "/jobs/list", None, True),
        ("GET", "/jobs/list", None, False),
        ("GET", "/redirect", None, True),  # a 302: handed back, never followed
        ("POST", "/echo/x?a=1", b'{"a": 1}', True),  # answers with Set-Cookie
        ("GET", "/status/404", None, False),
    ],
)
def test_a_request_sent_by_the_adapter_is_answered_as_the_session_would_answer_it(eventory, method, path, data, stream):
    session = new_session(pool_size=4)
    headers = {"Authorization": f"Bearer {eventory.issue_token('anna@example.com')}", "Accept": "application/json"}

    def answered(response: requests.Response) -> tuple:
        body = response.raw.read() if stream else response.content
        response.close()
        return (
            response.status_code,
            response.reason,
            response.url,
            response.encoding,
            [(name.lower(), value) for name, value in response.headers.items() if name.lower() != "date"],
            body if path != "/echo/x?a=1" else len(body),  # the echo's headers hold its own port
            response.history,
            response.connection is session.get_adapter(response.url),
        )

    url = eventory.url + path
    theirs = session.send(prepare(method, url, headers, data), timeout=(5, 10), allow_redirects=False, stream=stream)
    ours = send_prepared(session, prepare(method, url, headers, data), timeout=(5, 10), stream=stream)
    assert not stream or not ours.raw.closed  # streamed: nothing read ahead
    assert answered(ours) == answered(theirs), "requests' Session.send now does more to an answer"
    assert len(session.cookies) == 0  # neither kept Eventory's cookie
    assert session.hooks == {"response": []}  # nothing for Session.send to run


# --- database/driver_queries.py: the relay's statements straight to the driver ----------------------------


def _core_row(statement, params):
    with db.engine.connect() as connection:
        row = connection.execute(statement, params).first()
    return None if row is None else tuple(row)


def test_driver_queries_read_what_sqlalchemy_reads_in_the_drivers_parameter_style(app, client):
    ada = register_and_login(client, ADA)
    register_and_login(client, BOB)
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=ada).json["id"]
    with app.test_request_context():
        claims = decode_token(ada["Authorization"].removeprefix("Bearer "))
        sql, order = REVOCATION_CHECK.compiled(db.engine)
        style = db.engine.dialect.paramstyle
        assert (style in ("qmark", "format", "numeric")) == (order is not None)
        assert {"qmark": "?", "format": "%s", "pyformat": "%(user_id)s", "named": ":user_id"}[style] in sql
        revocations = [
            {"user_id": 1, "family": claims["fam"], "jti": claims["jti"]},  # a live token
            {"user_id": 1, "family": "no such family", "jti": "no such jti"},
            {"user_id": 2, "family": None, "jti": None},
            {"user_id": 99, "family": None, "jti": None},  # no such account
        ]
        db.session.add(RevokedToken(jti="gone", expires_at=datetime(2999, 1, 1, tzinfo=UTC)))
        db.session.commit()
        revocations.append({"user_id": 1, "family": claims["fam"], "jti": "gone"})
        for params in revocations:
            assert _normalised(REVOCATION_CHECK.first(db.engine, params)) == _normalised(
                _core_row(REVOCATION_CHECK.statement, params)
            ), params
        db.session.add(LoginShare(login_id=login_id, grantee_id=2, role="use", accepted=True))
        db.session.commit()
        stored = logins._STORED_CREDENTIALS
        for user_id in (1, 2, 99):  # the owner, a grantee, and nobody (no row)
            params = {"login_id": login_id, "user_id": user_id}
            assert _normalised(stored.first(db.engine, params)) == _normalised(_core_row(stored.statement, params))
        for user_id in (1, 2):
            found = logins.stored_credentials(user_id, login_id)
            assert (found.login_id, found.owner_id, found.username) == (login_id, 1, EVENTORY_LOGIN["username"])
            assert found.read_only is False


def test_a_driver_query_reads_the_latest_commit_and_gives_its_connection_back(app, client):
    """Each statement takes a pooled connection and returns it, so it sees what another writer
    (a second instance) committed a moment ago."""
    ada = register_and_login(client, ADA)
    with app.test_request_context():
        claims = decode_token(ada["Authorization"].removeprefix("Bearer "))
        params = {"user_id": 1, "family": claims["fam"], "jti": claims["jti"]}
        assert REVOCATION_CHECK.first(db.engine, params)[-1] in (0, False)
        with db.engine.begin() as other_writer:
            other_writer.execute(
                RevokedToken.__table__.insert().values(jti=claims["jti"], expires_at=datetime(2999, 1, 1, tzinfo=UTC))
            )
        assert REVOCATION_CHECK.first(db.engine, params)[-1] in (1, True)
        assert db.engine.pool.checkedout() == 0


def _normalised(row):
    """Flags as the driver returns them (0/1 on SQLite, booleans elsewhere) compared as booleans."""
    return None if row is None else tuple(bool(value) if value in (0, 1) else value for value in row)


# --- ratelimit/memory_sweeper.py: one thread sweeps the in-memory rate-limit storage --------------


def _hits_start_threads(storage: MemoryStorage, monkeypatch) -> int:
    """How many threads three hits 20 ms apart start (the storage's own timer lasts 10 ms, so
    unswept it starts one for each)."""
    started = []
    real_start = threading.Thread.start

    def counted_start(thread: threading.Thread) -> None:
        started.append(thread)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted_start)
    for _ in range(3):
        storage.incr("fixed", 60)
        time.sleep(0.02)
    monkeypatch.undo()
    return len(started)


def test_a_swept_memory_storage_starts_no_thread_of_its_own_and_still_expires(monkeypatch):
    assert _hits_start_threads(MemoryStorage(), monkeypatch) > 0  # what the workaround is for
    storage = MemoryStorage()
    assert sweep_in_one_thread(storage)
    assert _hits_start_threads(storage, monkeypatch) == 0
    storage.incr("short", 0.2)
    deadline = time.monotonic() + 5 * SWEEP_SECONDS
    while "short" in storage.storage or "short" in storage.expirations:
        assert time.monotonic() < deadline, "the sweeper never dropped the expired counter"
        time.sleep(0.05)
    assert storage.get("fixed") == 3  # live counters stay


def test_the_apps_rate_limit_storage_is_swept(make_app):
    app = make_app(RATELIMIT_ENABLED=True)  # the default storage, memory://
    storage = app.extensions["eventory_ratelimit"].storage
    assert isinstance(storage, MemoryStorage) and storage.timer.name == "rate-limit-sweeper"
