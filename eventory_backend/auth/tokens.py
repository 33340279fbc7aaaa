"""Access and refresh tokens: issuing, rotating, revoking, and the check every request makes."""

from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from flask import current_app, g
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from sqlalchemy import CursorResult, Engine, bindparam, delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from werkzeug.exceptions import Unauthorized

from ..db_types import utcnow
from ..extensions import db, jwt
from .models import RefreshToken, RevokedToken, TokenFamily, User


def issue_tokens(user: User | Account, family_id: str | None = None) -> dict:
    """A new access token and refresh token; a new family unless rotating within one."""
    config = current_app.config
    refresh_expires_at = utcnow() + config["JWT_REFRESH_TOKEN_EXPIRES"]
    if family_id is None:
        family_id = str(uuid.uuid4())
        db.session.add(TokenFamily(id=family_id, user_id=user.id, expires_at=refresh_expires_at))
        db.session.flush()  # no relationship tells the unit of work the family goes first
    else:
        db.session.execute(update(TokenFamily).where(TokenFamily.id == family_id).values(expires_at=refresh_expires_at))
    claims = {"gen": user.token_generation, "fam": family_id}
    identity = str(user.id)  # sub must be a str since PyJWT 2.10
    access = create_access_token(identity=identity, additional_claims=claims)
    refresh = create_refresh_token(identity=identity, additional_claims=claims)
    db.session.add(RefreshToken(jti=decode_token(refresh)["jti"], family_id=family_id, expires_at=refresh_expires_at))
    _forget_expired()
    db.session.commit()
    return {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": int(config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
        "refresh_token": refresh,
    }


def rotate(user: User | Account, payload: dict) -> dict:
    """Trade a refresh token for a new pair. A refresh token presented twice ends its whole family."""
    result = db.session.execute(
        update(RefreshToken).where(RefreshToken.jti == payload["jti"], RefreshToken.used.is_(False)).values(used=True)
    )
    used_now = cast(CursorResult, result).rowcount
    if used_now != 1:
        db.session.execute(update(TokenFamily).where(TokenFamily.id == payload.get("fam")).values(revoked=True))
        db.session.commit()
        raise Unauthorized(
            "This refresh token was already used, so every session of that login has been ended; log in again."
        )
    return issue_tokens(user, family_id=payload["fam"])


def revoke(payload: dict) -> None:
    """End the presented token and the family it came from (its refresh token too)."""
    expires = datetime.fromtimestamp(payload["exp"], UTC)
    if db.session.get(RevokedToken, payload["jti"]) is None:
        db.session.add(RevokedToken(jti=payload["jti"], expires_at=expires))
    if payload.get("fam"):
        db.session.execute(update(TokenFamily).where(TokenFamily.id == payload["fam"]).values(revoked=True))
    _forget_expired()
    db.session.commit()


def revoke_all(user: User) -> None:
    """End every token the user holds, on every instance."""
    user.token_generation += 1
    db.session.commit()


def _forget_expired() -> None:
    now = utcnow()
    db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
    db.session.execute(delete(TokenFamily).where(TokenFamily.expires_at < now))


@dataclass(frozen=True)
class Account:
    """Who a verified token belongs to, read by the revocation check. Views that show or change
    the account load the `User` row themselves (`services.get_account`)."""

    id: int
    username: str
    token_generation: int


# The user, the family's revoked flag and whether the jti is revoked, in one round trip.
_REVOCATION_CHECK = select(
    User.id,
    User.username,
    User.token_generation,
    select(TokenFamily.revoked).where(TokenFamily.id == bindparam("family")).scalar_subquery(),
    select(RevokedToken.jti).where(RevokedToken.jti == bindparam("jti")).exists(),
).where(User.id == bindparam("user_id"))


_compiled_checks: weakref.WeakKeyDictionary[Engine, SQLCompiler] = weakref.WeakKeyDictionary()


def _revocation_check_for(engine: Engine) -> SQLCompiler:
    """_REVOCATION_CHECK compiled once per engine, in its driver's own SQL and parameter style."""
    compiled = _compiled_checks.get(engine)
    if compiled is None:
        compiled = cast(SQLCompiler, _REVOCATION_CHECK.compile(dialect=engine.dialect))
        _compiled_checks[engine] = compiled
    return compiled


def _read_revocation_state(user_id: int, family: str | None, jti: str | None) -> tuple | None:
    """The check's row, on a pooled connection held only for the query. It goes to the driver
    directly: SQLAlchemy's Connection and result objects cost more than the query (a twelfth of
    a relayed request). As SQLAlchemy would, a connection the database dropped is invalidated,
    and driver errors are raised as SQLAlchemy's, so they answer as any database error does."""
    engine = db.engine
    compiled = _revocation_check_for(engine)
    values = compiled.construct_params({"user_id": user_id, "family": family, "jti": jti}) or {}
    params: Any = tuple(values[name] for name in compiled.positiontup or ()) if compiled.positional else values
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


@jwt.token_in_blocklist_loader
def _is_revoked(_header: dict, payload: dict) -> bool:
    """One query on every authenticated request, on a connection held only for that query (a
    relayed request then waits on Eventory without one)."""
    try:
        user_id = int(payload["sub"])
    except (KeyError, TypeError, ValueError):
        return True
    row = _read_revocation_state(user_id, payload.get("fam"), payload.get("jti"))
    if row is None:
        return False  # the user lookup answers "the account no longer exists"
    account_id, username, generation, family_is_revoked, jti_is_revoked = row
    g.token_account = Account(account_id, username, generation)  # the user lookup of this request takes it
    if payload.get("gen") != generation or jti_is_revoked:
        return True
    # A token with a family whose row is gone (expired, or its user deleted) is over too.
    return payload.get("fam") is not None and (family_is_revoked is None or bool(family_is_revoked))
