"""The database: the schema belongs to the migrations (an empty database is brought up to date and
matches the models), timestamps are UTC with microseconds and usernames unique ignoring case (and
nothing else) on SQLite, PostgreSQL and MariaDB alike, and trouble answers what the client can act
on: 409 for a conflicting write, 503 with Retry-After when the database stays locked, picks a
deadlock's victim or cannot be reached; never a 500 and never a half-written row. A connection the
server closed is replaced without a failed request."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta, timezone

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, event, inspect, select, text
from sqlalchemy.orm import Session

from eventory_backend.auth.models import User
from eventory_backend.extensions import db, migrate
from eventory_backend.logins.models import EventoryLogin

from .helpers import ADA, BOB, EVENTORY_LOGIN, app_whose_database_is_gone, register_and_login

SECRET_CIPHERTEXT = "gAAAA-ciphertext-that-must-not-leak"


@pytest.fixture
def sqlite_path(database_url) -> str:
    if not database_url.startswith("sqlite:///"):
        pytest.skip("locks an SQLite file from a second connection")
    return database_url.removeprefix("sqlite:///")


@contextmanager
def locked(path: str):
    """Another process's write transaction on the database file."""
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield holder
        finally:
            holder.execute("ROLLBACK")


def short_busy_timeout(app, milliseconds: int = 200) -> None:
    """The app sets PRAGMA busy_timeout=5000 on every SQLite connection, over any connect_args
    timeout; set a short one after it so a test does not wait five seconds."""
    with app.app_context():
        engine = db.engine

        @event.listens_for(engine, "connect")
        def _short(dbapi_connection, _record):
            dbapi_connection.execute(f"PRAGMA busy_timeout={milliseconds}")

        engine.dispose()
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == milliseconds


def login_rows(app) -> list:
    with app.app_context():
        return list(db.session.execute(db.select(EventoryLogin.label)).scalars())


# --- the schema and the migrations ---------------------------------------------------------------


def schema_drift(app) -> list:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


@pytest.mark.empty_database
def test_start_brings_an_empty_database_to_the_models(app):
    assert schema_drift(app) == []
    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
    assert {
        "users",
        "eventory_logins",
        "token_families",
        "refresh_tokens",
        "revoked_tokens",
        "alembic_version",
    } <= tables


def _type_shape(type_, dialect) -> tuple[list[str], list[str]]:
    compiled = type_.compile(dialect=dialect)
    return re.findall(r"\(([^)]*)\)", compiled), re.findall(r"COLLATE (\w+)", compiled)


def test_the_migrated_mysql_columns_are_the_models_to_the_last_argument(app, database_url):
    """Alembic's comparison passes DATETIME against DATETIME(6) and any collation against none; on
    MySQL the timestamps' precision and the usernames' collation are checked here."""
    if not database_url.startswith("mysql"):
        pytest.skip("MySQL and MariaDB only: fractional seconds and collations in column types")
    with app.app_context():
        inspector, dialect = inspect(db.engine), db.engine.dialect
        for table in db.metadata.sorted_tables:
            reflected = {column["name"]: column["type"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                declared, found = _type_shape(column.type, dialect), _type_shape(reflected[column.name], dialect)
                if declared != ([], []) or str(reflected[column.name]).startswith("DATETIME"):
                    assert found == declared, (table.name, column.name)
        checked = _type_shape(db.metadata.tables["users"].c.created_at.type, dialect)
        assert checked == (["6"], [])
        assert _type_shape(db.metadata.tables["users"].c.username_key.type, dialect) == (["256"], ["utf8mb4_bin"])


def test_downgrade_and_upgrade_again(app):
    with app.app_context():
        flask_migrate.downgrade(directory=migrate.directory, revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        flask_migrate.upgrade(directory=migrate.directory)
    assert schema_drift(app) == []
    client = app.test_client()
    assert client.get("/auth/me", headers=register_and_login(client, ADA)).status_code == 200


def test_restart_on_an_up_to_date_database_keeps_the_data(make_app):
    """The account, and the token issued before the restart, both still work."""
    client = make_app().test_client()
    headers = register_and_login(client, ADA)
    me = make_app().test_client().get("/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json["username"] == "ada"


def on_server(database_url: str, why: str) -> str:
    """The server's family ("postgresql" or "mysql"); skips on SQLite, saying why."""
    for family in ("postgresql", "mysql"):
        if database_url.startswith(family):
            return family
    pytest.skip(why)


def app_on_server(make_app, database_url: str, why: str, *, postgresql: str, mysql: str):
    """An app whose every new database connection runs one setting (`postgresql`: `-c` options,
    `mysql`: a statement), with Ada registered: the app, its test client and Ada's headers."""
    family = on_server(database_url, why)
    connect_args = {"options": postgresql} if family == "postgresql" else {"init_command": mysql}
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"connect_args": connect_args})
    client = app.test_client()
    return app, client, register_and_login(client, ADA)


def test_timestamps_are_utc_whatever_the_database_servers_time_zone(make_app, database_url):
    _app, client, headers = app_on_server(
        make_app,
        database_url,
        "only a database server has a time zone of its own (the PostgreSQL and MariaDB runs cover this)",
        postgresql="-c TimeZone=Europe/Stockholm",
        mysql="SET time_zone = '+05:00'",
    )
    assert client.get("/auth/me", headers=headers).json["created_at"].endswith("+00:00")
    saved = client.post("/logins", json=EVENTORY_LOGIN, headers=headers).json
    listed = client.get("/logins", headers=headers).json[0]
    assert saved["created_at"].endswith("+00:00") and listed["updated_at"].endswith("+00:00")
    created = datetime.fromisoformat(saved["created_at"])
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)  # the instant itself, not shifted


def test_timestamps_keep_their_microseconds_and_come_back_in_utc(app, client, ada, ada_login):
    stockholm = timezone(timedelta(hours=1))
    moment = datetime(2026, 12, 3, 10, 11, 12, 345678, tzinfo=stockholm)
    with app.app_context():
        db.session.execute(
            db.update(EventoryLogin).where(EventoryLogin.id == ada_login["id"]).values(updated_at=moment)
        )
        db.session.commit()
        stored = db.session.execute(select(EventoryLogin.updated_at)).scalar_one()
    assert stored == moment and stored.tzinfo == UTC
    expected = "2026-12-03T09:11:12.345678+00:00"
    assert client.get(f"/logins/{ada_login['id']}", headers=ada).json["updated_at"] == expected
    assert client.get("/logins", headers=ada).json[0]["updated_at"] == expected  # the listing's own query


def test_usernames_are_unique_ignoring_case_and_nothing_else(client):
    """MySQL's default collations also ignore accents: `Ada` is taken by `ada`, `Adà` is not."""
    for name in ("ada", "Adà", "adá", "ADAA"):
        response = client.post("/auth/register", json={"username": name, "password": ADA["password"]})
        assert response.status_code == 201, (name, response.json)
    for name in ("ADA", "aDÀ", "ADÁ", "adaa"):
        response = client.post("/auth/register", json={"username": name, "password": ADA["password"]})
        assert response.status_code == 409, (name, response.json)
    me = client.get("/auth/me", headers=register_and_login(client, {"username": "adã", "password": ADA["password"]}))
    assert me.json["username"] == "adã"


def test_four_byte_characters_are_stored_as_sent(client, ada):
    """MySQL's `utf8` holds three bytes a character; the tables are utf8mb4 whatever the server's default."""
    name = "Ada_𝒜𝒞"  # mathematical script letters: four bytes each in UTF-8
    assert client.post("/auth/register", json={"username": name, "password": ADA["password"]}).status_code == 201
    login = client.post("/logins", json={**EVENTORY_LOGIN, "label": "Org 🎪"}, headers=ada).json
    assert client.get(f"/logins/{login['id']}", headers=ada).json["label"] == "Org 🎪"
    assert client.post("/auth/login", data={"username": name, "password": ADA["password"]}).status_code == 200


def test_tables_are_innodb_and_utf8mb4_whatever_the_databases_defaults(make_app, database_url):
    if not database_url.startswith("mysql"):
        pytest.skip("MySQL and MariaDB only: table engines and character sets")
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("ALTER DATABASE CHARACTER SET latin1"))
        app = make_app()  # the migrations create the tables in a latin1 database
        with engine.connect() as connection:
            tables = connection.execute(
                text(
                    "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES"
                    " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME <> 'alembic_version'"
                )
            ).all()
    finally:
        with engine.begin() as connection:
            connection.execute(text("ALTER DATABASE CHARACTER SET utf8mb4"))
        engine.dispose()
    assert sorted(name for name, _engine, _collation in tables) == sorted(db.metadata.tables)
    assert all(engine_name == "InnoDB" and collation.startswith("utf8mb4") for _t, engine_name, collation in tables)
    client = app.test_client()
    assert client.post("/auth/register", json={"username": "Ada_𝒜𝒞", "password": ADA["password"]}).status_code == 201


# --- a conflicting write -------------------------------------------------------------------------


def _saved_login(owner_id: int, label: str = "half") -> EventoryLogin:
    return EventoryLogin(
        owner_id=owner_id, label=label, username="u", password_encrypted=SECRET_CIPHERTEXT, color="#fff"
    )


def _conflicting_writes(app):
    """Routes whose last write conflicts after a valid one in the same transaction."""

    @app.post("/test/duplicate-user")
    def duplicate_user():
        owner = db.session.execute(db.select(User)).scalar_one()
        db.session.add(_saved_login(owner.id))
        db.session.add(User(username="ADA", username_key=owner.username_key, password_hash="x"))
        db.session.commit()
        return {}

    @app.post("/test/missing-owner")
    def missing_owner():
        owner = db.session.execute(db.select(User)).scalar_one()
        db.session.add(_saved_login(owner.id))
        db.session.add(_saved_login(owner.id + 1000, "orphan"))
        db.session.commit()
        return {}


@pytest.mark.parametrize("route", ["/test/duplicate-user", "/test/missing-owner"], ids=["unique", "foreign-key"])
def test_integrity_conflict_is_409_and_writes_nothing(make_app, route):
    app = make_app()
    _conflicting_writes(app)
    client = app.test_client()
    headers = register_and_login(client, ADA)

    response = client.post(route)

    assert response.status_code == 409
    assert response.mimetype == "application/json"
    assert set(response.json) == {"detail"} and response.json["detail"]
    assert SECRET_CIPHERTEXT not in response.get_data(as_text=True)
    assert "INSERT" not in response.get_data(as_text=True)
    assert login_rows(app) == []
    with app.app_context():
        assert db.session.execute(db.select(User.username)).scalars().all() == ["ada"]
    # The failed transaction left nothing behind that breaks the next request.
    assert client.post("/logins", json=EVENTORY_LOGIN, headers=headers).status_code == 201


def test_racing_update_of_one_login_is_a_409_not_a_lost_write(app, client, ada, database_url):
    """Another writer changes the row between this request's read and its write."""
    created = client.post(
        "/logins", json={"label": "Mine", "username": "u@example.com", "password": "p"}, headers=ada
    ).json
    other_writer = create_engine(database_url)
    fired = []

    def concurrent_write(session, _context, _instances):
        if not fired:
            fired.append(True)
            with other_writer.begin() as connection:
                connection.execute(
                    text("UPDATE eventory_logins SET label = 'Theirs', version = version + 1 WHERE id = :id"),
                    {"id": created["id"]},
                )

    event.listen(Session, "before_flush", concurrent_write)
    try:
        response = client.put(f"/logins/{created['id']}", json={"color": "#000"}, headers=ada)
    finally:
        event.remove(Session, "before_flush", concurrent_write)
        other_writer.dispose()
    assert response.status_code == 409
    assert "changed" in response.json["detail"]
    after = client.get(f"/logins/{created['id']}", headers=ada).json
    assert (after["label"], after["color"]) == ("Theirs", "#1976d2")


# --- a database that stays locked ----------------------------------------------------------------


def test_write_to_a_database_locked_past_the_busy_timeout_is_503_with_retry_after(make_app, sqlite_path):
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"timeout": 0.2}})
    short_busy_timeout(app)
    client = app.test_client()
    headers = register_and_login(client, ADA)

    with locked(sqlite_path):
        started = time.monotonic()
        response = client.post("/logins", json=EVENTORY_LOGIN, headers=headers)
        waited = time.monotonic() - started

    assert response.status_code == 503, response.json
    assert set(response.json) == {"detail"} and response.json["detail"]
    assert response.headers["Retry-After"].isdigit() and int(response.headers["Retry-After"]) > 0
    assert waited < 3
    assert login_rows(app) == []
    assert client.post("/logins", json=EVENTORY_LOGIN, headers=headers).status_code == 201
    assert login_rows(app) == [EVENTORY_LOGIN["label"]]


def test_registration_while_the_database_is_locked_is_503_and_creates_no_account(make_app, sqlite_path):
    app = make_app()
    short_busy_timeout(app)
    client = app.test_client()

    with locked(sqlite_path):
        response = client.post("/auth/register", json=ADA)

    assert response.status_code == 503, response.json
    assert "Retry-After" in response.headers
    assert client.post("/auth/login", data=ADA).status_code == 401
    assert client.post("/auth/register", json=ADA).status_code == 201


def test_reads_are_served_while_another_connection_writes(make_app, sqlite_path):
    app = make_app()
    short_busy_timeout(app)
    client = app.test_client()
    headers = register_and_login(client, ADA)
    client.post("/logins", json=EVENTORY_LOGIN, headers=headers)

    with locked(sqlite_path):
        listed = client.get("/logins", headers=headers)
        me = client.get("/auth/me", headers=headers)

    assert listed.status_code == 200 and len(listed.json) == 1
    assert me.status_code == 200


def test_a_short_lock_is_waited_out_not_an_error(make_app, sqlite_path):
    app = make_app()
    client = app.test_client()
    headers = register_and_login(client, ADA)

    with closing(sqlite3.connect(sqlite_path, isolation_level=None, check_same_thread=False)) as holder:
        holder.execute("BEGIN EXCLUSIVE")
        release = threading.Timer(0.3, holder.execute, args=("ROLLBACK",))
        release.start()
        try:
            response = client.post("/logins", json=EVENTORY_LOGIN, headers=headers)
        finally:
            release.join()

    assert response.status_code == 201, response.json
    assert login_rows(app) == [EVENTORY_LOGIN["label"]]


# --- a database server's locks, deadlocks and closed connections --------------------------------

SERVER_LOCKS = "row locks and their time limits are a database server's (SQLite's locks: the tests above)"


def assert_busy(response) -> None:
    assert response.status_code == 503, response.get_json()
    assert response.json["detail"] == "The database is busy; try again in a moment."
    assert response.headers["Retry-After"] == "1"


def test_a_row_locked_past_the_servers_lock_timeout_is_503_busy(make_app, database_url):
    _app, client, headers = app_on_server(
        make_app, database_url, SERVER_LOCKS, postgresql="-c lock_timeout=300", mysql="SET innodb_lock_wait_timeout = 1"
    )
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=headers).json["id"]
    other = create_engine(database_url)
    try:
        with other.connect() as holder, holder.begin():
            holder.execute(text("SELECT id FROM eventory_logins WHERE id = :id FOR UPDATE"), {"id": login_id})
            response = client.put(f"/logins/{login_id}", json={"label": "Renamed"}, headers=headers)
    finally:
        other.dispose()
    assert_busy(response)
    assert client.get(f"/logins/{login_id}", headers=headers).json["label"] == EVENTORY_LOGIN["label"]
    assert client.put(f"/logins/{login_id}", json={"label": "Renamed"}, headers=headers).status_code == 200


def test_the_victim_of_a_deadlock_is_503_busy_and_the_other_request_succeeds(make_app, database_url):
    on_server(database_url, SERVER_LOCKS)
    app = make_app()
    both_hold_one = threading.Barrier(2, timeout=10)

    @app.post("/test/lock/<int:first>/<int:second>")
    def lock_one_then_the_other(first, second):
        for user_id in (first, second):
            db.session.execute(select(User.id).where(User.id == user_id).with_for_update())
            if user_id == first:
                both_hold_one.wait()
        db.session.commit()
        return {}

    client = app.test_client()
    register_and_login(client, ADA)
    register_and_login(client, BOB)
    with app.app_context():
        ada_id, bob_id = db.session.execute(select(User.id).order_by(User.id)).scalars()

    statuses: dict[str, object] = {}

    def call(name, first, second):
        statuses[name] = app.test_client().post(f"/test/lock/{first}/{second}")

    threads = [
        threading.Thread(target=call, args=("ada first", ada_id, bob_id)),
        threading.Thread(target=call, args=("bob first", bob_id, ada_id)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    responses = sorted(statuses.values(), key=lambda response: response.status_code)
    assert [response.status_code for response in responses] == [200, 503]
    assert_busy(responses[1])


@pytest.mark.parametrize("path", ["/auth/me", "/logins"])
def test_a_connection_the_server_closed_while_idle_is_replaced_without_a_failed_request(make_app, database_url, path):
    """MySQL's wait_timeout (PostgreSQL's idle_session_timeout) closes idle pooled connections."""
    app, client, headers = app_on_server(
        make_app,
        database_url,
        "only a database server closes idle connections",
        postgresql="-c idle_session_timeout=1000",
        mysql="SET SESSION wait_timeout = 1",
    )
    assert client.get(path, headers=headers).status_code == 200
    with app.app_context():
        idle = db.engine.pool.checkedin()
    assert idle >= 1
    time.sleep(2.5)  # past the server's limit: every pooled connection is closed by now

    response = client.get(path, headers=headers)

    assert response.status_code == 200, response.get_json()


# --- a database that cannot be reached or fails --------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/me", "/logins", "/eventory/jobs/list"])
def test_an_authenticated_request_while_the_database_is_unreachable_is_503(make_app, tmp_path, path, caplog):
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{(tmp_path / 'first.db').as_posix()}")
    headers = register_and_login(app.test_client(), ADA)  # a valid token, signed with the tests' key
    token = headers["Authorization"].split()[1]
    assert app.test_client().get("/auth/me", headers=headers).status_code == 200
    client = app_whose_database_is_gone(make_app, tmp_path).test_client()  # every new connection fails

    response = client.get(path, headers={**headers, "X-Eventory-Authorization": "Bearer an-eventory-token"})
    assert response.status_code == 503, response.get_json()
    assert response.headers["Retry-After"].isdigit()
    assert response.json["detail"]
    assert token not in response.get_data(as_text=True) and token not in caplog.text


def test_a_failing_revocation_query_is_503_not_500(app, client, ada, database_url):
    with app.app_context():
        db.session.execute(text("DROP TABLE revoked_tokens"))
        db.session.commit()
    response = client.get("/auth/me", headers=ada)
    assert response.status_code == 503, response.get_json()
    assert response.json["detail"]


def test_no_free_database_connection_in_time_is_503_not_500(make_app):
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2})
    client = app.test_client()
    headers = register_and_login(client, ADA)
    with app.app_context(), db.engine.connect():  # the pool's only connection, held
        response = client.get("/auth/me", headers=headers)
    assert response.status_code == 503, response.get_json()
    assert response.headers["Retry-After"].isdigit()


def test_the_upgrade_to_never_reused_ids_keeps_every_row_and_reference(make_app):
    app = make_app(AUTO_MIGRATE=False)
    new_login = (
        "INSERT INTO eventory_logins (owner_id, label, username, password_encrypted, color, created_at, updated_at)"
        " VALUES (:owner, :label, 'u', 'c', '#fff', '2026-12-01 00:00:00', '2026-12-01 00:00:00')"
    )
    with app.app_context():
        flask_migrate.upgrade(directory=migrate.directory, revision="0002")  # the schema before ids were kept
        db.session.execute(
            text(
                "INSERT INTO users (username, username_key, password_hash, created_at)"
                " VALUES ('ada', 'ada', 'x', '2026-12-01 00:00:00')"
            )
        )
        owner = db.session.execute(text("SELECT id FROM users")).scalar_one()
        for number in (1, 2, 3):
            db.session.execute(text(new_login), {"owner": owner, "label": f"Org {number}"})
        db.session.commit()
        before = db.session.execute(text("SELECT id, owner_id, label FROM eventory_logins ORDER BY id")).all()
        db.session.rollback()  # MySQL's ALTER TABLE waits for every open transaction that read the table
        flask_migrate.upgrade(directory=migrate.directory)
        if db.engine.dialect.name == "sqlite":
            with db.engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # set back on
        assert db.session.execute(text("SELECT id, owner_id, label FROM eventory_logins ORDER BY id")).all() == before
        highest = before[-1][0]
        db.session.execute(text("DELETE FROM eventory_logins WHERE id = :id"), {"id": highest})
        db.session.commit()
    client = app.test_client()
    client.post("/auth/register", json=BOB)
    headers = {"Authorization": "Bearer " + client.post("/auth/login", data=BOB).json["access_token"]}
    assert client.post("/logins", json=EVENTORY_LOGIN, headers=headers).json["id"] > highest  # not handed out again
    with app.app_context():
        db.session.execute(text("DELETE FROM users WHERE id = :id"), {"id": owner})  # references still cascade
        db.session.commit()
        assert db.session.execute(text("SELECT count(*) FROM eventory_logins")).scalar_one() == 1


def test_the_health_columns_upgrade_existing_logins_to_unknown_and_downgrade_away(make_app):
    app = make_app(AUTO_MIGRATE=False)
    with app.app_context():
        flask_migrate.upgrade(directory=migrate.directory, revision="0005")  # the schema before login health
        db.session.execute(
            text(
                "INSERT INTO users (username, username_key, password_hash, created_at)"
                " VALUES ('ada', 'ada', 'x', '2026-12-01 00:00:00')"
            )
        )
        db.session.execute(
            text(
                "INSERT INTO eventory_logins (owner_id, label, username, password_encrypted, color, created_at,"
                " updated_at) SELECT id, 'Org One', 'u', 'c', '#fff', created_at, created_at FROM users"
            )
        )
        db.session.commit()
        flask_migrate.upgrade(directory=migrate.directory)
        rows = db.session.execute(text("SELECT label, status, checked_at FROM eventory_logins")).all()
        assert [tuple(row) for row in rows] == [("Org One", "unknown", None)]
        db.session.rollback()  # MySQL's ALTER TABLE waits for every open transaction that read the table
        flask_migrate.downgrade(directory=migrate.directory, revision="0005")
        columns = {column["name"] for column in inspect(db.engine).get_columns("eventory_logins")}
        assert not {"status", "checked_at"} & columns
        assert db.session.execute(text("SELECT label FROM eventory_logins")).scalars().all() == ["Org One"]
        db.session.rollback()
        flask_migrate.upgrade(directory=migrate.directory)
    assert schema_drift(app) == []
