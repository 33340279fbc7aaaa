"""A workaround: one prebuilt Core SELECT run on the database driver directly, under SQLAlchemy's
Connection and Result objects.

Why: the revocation check runs on every authenticated request, and SQLAlchemy's Connection,
execution context and Result cost more than the query itself (bench/README.md has the figure).
What it keeps from SQLAlchemy: the statement is compiled by the engine's own dialect, once per
engine, in the driver's parameter style (qmark on sqlite3, pyformat on psycopg); connections come
from, and go back to, the engine's pool; a connection the database dropped is invalidated as
SQLAlchemy would; and driver errors are raised as SQLAlchemy's `DBAPIError` (parameters hidden),
so they answer as any database error does.

Checked against SQLAlchemy 2.1 (`SQLCompiler.construct_params`, `positional`, `positiontup`,
`Dialect.is_disconnect`, `DBAPIError.instance`); tests/test_auth.py holds its answers equal to
SQLAlchemy's own execution of the same statement, so an upgrade that changes them fails there.
"""

from __future__ import annotations

import weakref
from typing import Any, cast

from sqlalchemy import Engine, Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler

_compiled: weakref.WeakKeyDictionary[Engine, dict[int, SQLCompiler]] = weakref.WeakKeyDictionary()


def _compiled_for(engine: Engine, statement: Select) -> SQLCompiler:
    """`statement` compiled once per engine, in its driver's own SQL and parameter style."""
    per_engine = _compiled.setdefault(engine, {})
    compiled = per_engine.get(id(statement))
    if compiled is None:
        compiled = cast(SQLCompiler, statement.compile(dialect=engine.dialect))
        per_engine[id(statement)] = compiled
    return compiled


def first_row(engine: Engine, statement: Select, values: dict[str, Any]) -> tuple | None:
    """The first row of `statement` (a module-level constant) with `values` bound, on a pooled
    connection held only for the query."""
    compiled = _compiled_for(engine, statement)
    bound = compiled.construct_params(values) or {}
    params: Any = tuple(bound[name] for name in compiled.positiontup or ()) if compiled.positional else bound
    driver_error = engine.dialect.loaded_dbapi.Error
    connection = None
    try:
        connection = engine.raw_connection()
        cursor = connection.cursor()
        try:
            cursor.execute(compiled.string, params)
            return cursor.fetchone()
        finally:
            cursor.close()
    except driver_error as error:
        dropped = connection is not None and engine.dialect.is_disconnect(error, connection.dbapi_connection, None)
        if dropped and connection is not None:
            connection.invalidate(error)
        raise DBAPIError.instance(
            compiled.string,
            None,
            error,
            driver_error,
            hide_parameters=True,
            connection_invalidated=dropped,
            dialect=engine.dialect,
        ) from error
    finally:
        if connection is not None:
            connection.close()  # back to the pool, rolled back (or discarded when invalidated)
