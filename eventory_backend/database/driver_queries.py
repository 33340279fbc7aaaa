"""A workaround: the statements on the relay's path (the revocation check every authenticated
request makes, and a brokered call's stored credentials) are handed to the database driver as SQL
that SQLAlchemy compiled once per engine, on one of the pool's connections, instead of through
`Connection.execute`.

Why: SQLAlchemy's execution layer (a `Connection` around the pooled one, its transaction, the
statement cache lookup, result processing) costs more than the query itself; bench/README.md has
what it takes from a relayed request, well past the 5% that justifies going around a library.

Why it is safe: the SQL and its parameter order are SQLAlchemy's own compilation of the same Core
statement for the engine's dialect (so the driver's own parameter style: `?` for SQLite,
`%(name)s` for psycopg, `%s` for PyMySQL); the connection comes from the engine's pool (pre-ping,
recycling and the SQLite pragmas apply) and goes back to it, rolled back; a driver error becomes
SQLAlchemy's own exception (`DBAPIError.instance`), parameters hidden, so errors.py answers it as
any other database error, and a dropped connection is invalidated as SQLAlchemy would. Only
columns the driver returns as they are stored are read this way (integers, strings, flags).

Checked against SQLAlchemy 2.0 and 2.1: tests/test_library_workarounds.py holds every row equal
to what `Connection.execute` returns for the same statement and parameters, and the compiled SQL
in the driver's parameter style, on SQLite and on the suite's other databases.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import Select


class DriverQuery:
    """One Core SELECT, compiled once per engine, whose first row is read straight from the driver."""

    def __init__(self, statement: Select):
        self.statement = statement
        self._compiled: dict[int, tuple[Engine, str, tuple[str, ...] | None]] = {}
        self._lock = threading.Lock()

    def compiled(self, engine: Engine) -> tuple[str, tuple[str, ...] | None]:
        """(SQL, the parameter names in order for a positional style, or None for a named one)."""
        found = self._compiled.get(id(engine))
        if found is None or found[0] is not engine:
            compiled = self.statement.compile(dialect=engine.dialect)
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            found = (engine, str(compiled), order)
            with self._lock:
                self._compiled[id(engine)] = found
        return found[1], found[2]

    def first(self, engine: Engine, params: dict[str, Any]) -> tuple | None:
        """The statement's first row as the driver returns it, or None."""
        sql, order = self.compiled(engine)
        arguments: Any = tuple(params[name] for name in order) if order is not None else params
        connection = _pooled_connection(engine)
        try:
            return _first_row(engine, connection, sql, arguments)
        finally:
            connection.close()


def _pooled_connection(engine: Engine) -> Any:
    """A connection from the engine's pool; a driver error as SQLAlchemy's own exception."""
    try:
        return engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as error:
        raise _as_sqlalchemy_error(engine, None, error) from None


def _first_row(engine: Engine, connection: Any, sql: str, arguments: Any) -> tuple | None:
    """Run `sql` on a pooled `connection` and read its first row; a driver error is raised as
    SQLAlchemy's own exception, after invalidating the connection if the server dropped it."""
    driver_error = engine.dialect.loaded_dbapi.Error
    cursor = None
    try:
        cursor = connection.cursor()
        cursor.execute(sql, arguments)
        return cursor.fetchone()
    except driver_error as error:
        if engine.dialect.is_disconnect(error, connection.dbapi_connection, cursor):
            connection.invalidate(error)  # as SQLAlchemy would
        raise _as_sqlalchemy_error(engine, sql, error) from None
    finally:
        if cursor is not None:
            with contextlib.suppress(driver_error):
                cursor.close()


def _as_sqlalchemy_error(engine: Engine, sql: str | None, error: Exception) -> StatementError:
    """The exception `Connection.execute` would raise for this driver error (parameters hidden)."""
    return DBAPIError.instance(
        sql, None, error, engine.dialect.loaded_dbapi.Error, hide_parameters=True, dialect=engine.dialect
    )
