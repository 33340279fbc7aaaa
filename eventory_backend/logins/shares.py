"""Shares: the owner of a saved login lets another account use it (`use`) or also change it
(`manage`), without that account ever reading its password. Plain functions; no request in here.

Access is looked up on every call (services.access, services.stored_credentials), never cached:
a revoked share, or a deleted account (its shares go by ON DELETE CASCADE), ends access at once
on every instance."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import Conflict, Forbidden, NotFound

from ..audit import services as audit
from ..audit.services import Actor
from ..auth.services import User, find_user
from ..errors import FieldInvalid
from ..extensions import db
from .models import MANAGE, OWNER, LoginShare
from .services import access

DUPLICATE = "That account already has a share of this login; revoke it first to change its role."


def _shape(share: LoginShare, username: str) -> dict:
    return {
        "id": share.id,
        "login_id": share.login_id,
        "username": username,
        "role": share.role,
        "created_at": share.created_at,
    }


def share_login(actor: Actor, login_id: int, username: str, role: str) -> dict:
    """Let the account `username` use the login (owner only): 404 for an unknown account, 422 for
    oneself, 409 when that account has a share already."""
    grant = access(actor.id, login_id)
    grant.require(OWNER, refusal="Only the login's owner may share it.")
    grantee = find_user(username)
    if grantee is None:
        raise NotFound("No account with that username.")
    if grantee.id == actor.id:
        raise FieldInvalid("username", "You own this login already; share it with another account.")
    share = LoginShare(login_id=login_id, grantee_id=grantee.id, role=role)
    db.session.add(share)
    audit.record(
        actor, "share.grant", login_id=login_id, owner_id=actor.id, status=201, detail=_detail(grantee.username, role)
    )
    try:
        db.session.commit()
    except IntegrityError:  # the unique (login, grantee) pair: an existing share, or one made just now
        db.session.rollback()
        raise Conflict(DUPLICATE) from None
    return _shape(share, grantee.username)


def list_shares(actor: Actor, login_id: int) -> list[dict]:
    """The login's shares, oldest first (its owner and managers)."""
    access(actor.id, login_id).require(OWNER, MANAGE, refusal="Only the login's owner and its managers see its shares.")
    rows = db.session.execute(
        select(LoginShare, User.username)
        .join(User, User.id == LoginShare.grantee_id)
        .where(LoginShare.login_id == login_id)
        .order_by(LoginShare.id)
    ).all()
    return [_shape(share, username) for share, username in rows]


def revoke_share(actor: Actor, login_id: int, share_id: int) -> None:
    """End a share: the owner revokes it, or the grantee leaves it. The former grantee's next
    request with the login answers 404."""
    grant = access(actor.id, login_id)
    found = db.session.execute(
        select(LoginShare, User.username)
        .join(User, User.id == LoginShare.grantee_id)
        .where(LoginShare.id == share_id, LoginShare.login_id == login_id)
    ).first()
    if found is None:
        raise NotFound("No share with that id on this login.")
    share, username = found
    if grant.role != OWNER and share.grantee_id != actor.id:
        raise Forbidden("Only the login's owner revokes a share; a grantee may leave only their own.")
    audit.record(
        actor,
        "share.revoke",
        login_id=login_id,
        owner_id=grant.login.owner_id,
        status=204,
        detail=_detail(username, share.role),
    )
    db.session.delete(share)
    db.session.commit()


def _detail(username: str, role: str) -> str:
    return f"grantee={username} role={role}"
