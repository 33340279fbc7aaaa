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

On a SQLite file each thread keeps one connection of its own per engine for these statements,
taken from the engine's pool once and detached from it (`PoolProxiedConnection.detach`, with the
pragmas of the pool's `connect` event applied; all of them closed when the engine is disposed).
A SQLite connection is a file handle, not a slot on a server, and checking one out of the pool
and back in (its queue, its lock, the rollback on return) cost about 2% of a relayed request's
instructions. Each statement runs in SQLite's autocommit mode (the driver begins no transaction
for a SELECT), so it reads the latest commit, as a pooled connection does; a connection that
fails is closed and replaced; a forked process starts without any. On other databases every
statement takes a pooled connection and gives it back.

Checked against SQLAlchemy 2.0 and 2.1: tests/test_library_workarounds.py holds every row equal
to what `Connection.execute` returns for the same statement and parameters, and the compiled SQL
in the driver's parameter style, on SQLite and on the suite's other databases.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.pool import QueuePool
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
        if _keeps_own_connections(engine):
            return _first_row(engine, _own.connection(engine), sql, arguments, _drop_own)
        connection = _pooled_connection(engine)
        try:
            return _first_row(engine, connection, sql, arguments, _invalidate_if_dropped)
        finally:
            connection.close()


def _pooled_connection(engine: Engine) -> Any:
    """A connection from the engine's pool; a driver error as SQLAlchemy's own exception."""
    try:
        return engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as error:
        raise _as_sqlalchemy_error(engine, None, error) from None


# What a statement's failure does to its connection: (engine, connection, driver error, cursor or None).
OnFailure = Callable[[Engine, Any, Any, Any], None]


def _first_row(engine: Engine, connection: Any, sql: str, arguments: Any, on_failure: OnFailure) -> tuple | None:
    """Run `sql` on `connection` and read its first row; a driver error goes to `on_failure`, then
    is raised as SQLAlchemy's own exception."""
    driver_error = engine.dialect.loaded_dbapi.Error
    cursor = None
    try:
        cursor = connection.cursor()
        cursor.execute(sql, arguments)
        return cursor.fetchone()
    except driver_error as error:
        on_failure(engine, connection, error, cursor)
        raise _as_sqlalchemy_error(engine, sql, error) from None
    finally:
        if cursor is not None:
            with contextlib.suppress(driver_error):
                cursor.close()


def _invalidate_if_dropped(engine: Engine, connection: Any, error: Any, cursor: Any) -> None:
    """A pooled connection the server dropped is invalidated, as SQLAlchemy would."""
    if engine.dialect.is_disconnect(error, connection.dbapi_connection, cursor):
        connection.invalidate(error)


def _drop_own(engine: Engine, _connection: Any, _error: Any, _cursor: Any) -> None:
    """A thread's own SQLite connection that failed is closed; its next statement opens a new one."""
    _own.drop(engine)


def _keeps_own_connections(engine: Engine) -> bool:
    """A SQLite file behind a queue of pooled connections (not an in-memory database)."""
    return engine.dialect.name == "sqlite" and isinstance(engine.pool, QueuePool)


class _OwnConnections:
    """Each thread's own SQLite connection per engine (by thread id: a thread that ends leaves its
    connection to the next thread given the same id), all closed when the engine is disposed."""

    def __init__(self) -> None:
        self.by_engine: weakref.WeakKeyDictionary[Engine, dict[int, Any]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def connection(self, engine: Engine) -> Any:
        threads = self.by_engine.get(engine)
        held = threads.get(threading.get_ident()) if threads is not None else None
        return held if held is not None else self._open(engine)

    def _open(self, engine: Engine) -> Any:
        pooled = _pooled_connection(engine)
        pooled.detach()  # ours from now on: the pool opens another when it needs one
        with self._lock:
            threads = self.by_engine.get(engine)
            if threads is None:
                threads = self.by_engine[engine] = {}
                event.listen(engine, "engine_disposed", self._close_all)
            threads[threading.get_ident()] = pooled.dbapi_connection
        return pooled.dbapi_connection

    def drop(self, engine: Engine) -> None:
        """Close this thread's connection (it failed); its next statement opens a new one."""
        with self._lock:
            held = self.by_engine.get(engine, {}).pop(threading.get_ident(), None)
        _close(held)

    def _close_all(self, engine: Engine) -> None:
        with self._lock:
            threads = self.by_engine.pop(engine, {})
        for held in threads.values():
            _close(held)


def _close(connection: Any) -> None:
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.close()


_own = _OwnConnections()


def _forget_connections_of_the_parent() -> None:
    global _own
    _own = _OwnConnections()  # a SQLite connection must not be used across a fork


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_forget_connections_of_the_parent)


def _as_sqlalchemy_error(engine: Engine, sql: str | None, error: Exception) -> StatementError:
    """The exception `Connection.execute` would raise for this driver error (parameters hidden)."""
    return DBAPIError.instance(
        sql, None, error, engine.dialect.loaded_dbapi.Error, hide_parameters=True, dialect=engine.dialect
    )
