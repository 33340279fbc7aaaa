"""The schema belongs to the migrations: an empty database is brought up to date and matches the models."""

from __future__ import annotations

import flask_migrate
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from eventory_backend.extensions import db, migrate

from .helpers import ADA, register_and_login


def schema_drift(app) -> list:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


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


def test_downgrade_and_upgrade_again(app):
    with app.app_context():
        flask_migrate.downgrade(directory=migrate.directory, revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        flask_migrate.upgrade(directory=migrate.directory)
    assert schema_drift(app) == []
    client = app.test_client()
    assert client.get("/auth/me", headers=register_and_login(client, ADA)).status_code == 200


def test_restart_on_an_up_to_date_database_keeps_the_data(make_app):
    client = make_app().test_client()
    headers = register_and_login(client, ADA)
    assert make_app().test_client().get("/auth/me", headers=headers).json["username"] == "ada"
