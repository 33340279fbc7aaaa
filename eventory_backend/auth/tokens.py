"""Access and refresh tokens: issuing, rotating and revoking (the check every request makes is in guard.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import cast

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from sqlalchemy import CursorResult, delete, select, update
from werkzeug.exceptions import Unauthorized

from ..database import utcnow
from ..extensions import db
from .guard import Account
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
    """Trade a refresh token for a new pair. Presented again within BACKEND_REFRESH_GRACE_SECONDS
    (two tabs refreshing at once), it gets a fresh pair of the same family; presented again
    later, it was stolen or replayed, and its whole family ends."""
    result = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.jti == payload["jti"], RefreshToken.used.is_(False))
        .values(used=True, used_at=utcnow())
    )
    if cast(CursorResult, result).rowcount != 1:
        used_at = db.session.execute(select(RefreshToken.used_at).where(RefreshToken.jti == payload["jti"])).scalar()
        grace = timedelta(seconds=current_app.config["REFRESH_GRACE_SECONDS"])
        # Read after the other use committed (the update above waited for it), so never negative
        # on one clock; instances' clocks must agree to within the grace.
        if grace and used_at is not None and utcnow() - used_at <= grace:
            return issue_tokens(user, family_id=payload["fam"])
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
