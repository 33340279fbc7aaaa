"""Shares: the owner of a saved login lets another account use it (`use`) or also change it
(`manage`), without that account ever reading its password. A share is an invitation until that
account accepts it: until then it reaches nothing, and nobody can push a login into another
account's list. Plain functions; no request in here.

Access is looked up on every call (services.access, services.stored_credentials), never cached:
a revoked share, or a deleted account (its shares go by ON DELETE CASCADE), ends access at once
on every instance."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import Conflict, Forbidden, NotFound, TooManyRequests

from ..audit import services as audit
from ..audit.services import Actor
from ..auth.services import User, find_user
from ..database import utcnow
from ..errors import FieldInvalid
from ..extensions import db
from .models import MANAGE, OWNER, EventoryLogin, LoginShare, ShareDecline
from .services import access

DUPLICATE = "That account already has a share of this login; revoke it first to change its role."
DECLINED_FOR = timedelta(hours=24)  # a declined invitation cannot be sent to that account again for this long


class ShareNotFound(NotFound):
    """An invitation or share the caller is not the grantee of is as unknown as a missing one."""

    description = "No share of yours with that id."


def _shape(share: LoginShare, username: str) -> dict:
    return {
        "id": share.id,
        "login_id": share.login_id,
        "username": username,
        "role": share.role,
        "accepted": share.accepted,
        "created_at": share.created_at,
    }


def share_login(actor: Actor, login_id: int, username: str, role: str, most_pending: int) -> dict:
    """Invite the account `username` to use the login (owner only): 404 for an unknown account,
    422 for oneself, 409 when that account has a share or invitation already or declined this one
    within a day, 429 when it holds `most_pending` unanswered invitations already."""
    grant = access(actor.id, login_id)
    grant.require(OWNER, refusal="Only the login's owner may share it.")
    grantee = find_user(username)
    if grantee is None:
        raise NotFound("No account with that username.")
    if grantee.id == actor.id:
        raise FieldInvalid("username", "You own this login already; share it with another account.")
    if _declined_lately(login_id, grantee.id):
        raise Conflict("That account declined this login less than a day ago; it cannot be offered again yet.")
    if _pending_count(grantee.id) >= most_pending:
        # Worded without the number: whether some account has many offers waiting is not the sender's to learn.
        raise TooManyRequests("That account cannot take more invitations until it answers some of those waiting.")
    share = LoginShare(login_id=login_id, grantee_id=grantee.id, role=role, accepted=False)
    db.session.add(share)
    audit.record(
        actor,
        "share.grant",
        login_id=login_id,
        owner_id=actor.id,
        grantee_id=grantee.id,
        status=201,
        detail=_detail(grantee.username, role),
    )
    try:
        db.session.commit()
    except IntegrityError:  # the unique (login, grantee) pair: an existing share, or one made just now
        db.session.rollback()
        raise Conflict(DUPLICATE) from None
    return _shape(share, grantee.username)


def list_shares(actor: Actor, login_id: int) -> list[dict]:
    """The login's shares and invitations, oldest first (its owner and managers)."""
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
        grantee_id=share.grantee_id,
        status=204,
        detail=_detail(username, share.role),
    )
    db.session.delete(share)
    db.session.commit()


def incoming(grantee_id: int) -> list[dict]:
    """The invitations waiting for `grantee_id`'s answer, oldest first: which login (its label,
    never its username or password), whose, and with which role."""
    owner = User.__table__.alias("owner")
    rows = db.session.execute(
        select(LoginShare, EventoryLogin.label, owner.c.username)
        .join(EventoryLogin, EventoryLogin.id == LoginShare.login_id)
        .join(owner, owner.c.id == EventoryLogin.owner_id)
        .where(LoginShare.grantee_id == grantee_id, LoginShare.accepted.is_(False))
        .order_by(LoginShare.id)
    ).all()
    return [
        {
            "id": share.id,
            "login_id": share.login_id,
            "label": label,
            "owner": owner_name,
            "role": share.role,
            "created_at": share.created_at,
        }
        for share, label, owner_name in rows
    ]


def accept(actor: Actor, share_id: int) -> int:
    """Accept an invitation (only its grantee may; anyone else gets 404): from now on the login is
    in the grantee's list and may be used. Accepting one already accepted changes nothing. The
    login's id."""
    share, login = _own_share(actor, share_id)
    if not share.accepted:
        share.accepted = True
        audit.record(
            actor,
            "share.accept",
            login_id=login.id,
            owner_id=login.owner_id,
            grantee_id=actor.id,
            status=200,
            detail=_detail(actor.username, share.role),
        )
        db.session.commit()
    return login.id


def decline(actor: Actor, share_id: int) -> None:
    """Decline an invitation, or leave a share already accepted (only its grantee may; anyone
    else gets 404). A declined invitation cannot be sent again to this account for a day."""
    share, login = _own_share(actor, share_id)
    action = "share.revoke" if share.accepted else "share.decline"
    if not share.accepted:
        db.session.execute(
            delete(ShareDecline).where(ShareDecline.login_id == login.id, ShareDecline.grantee_id == actor.id)
        )
        db.session.add(ShareDecline(login_id=login.id, grantee_id=actor.id))
    audit.record(
        actor,
        action,
        login_id=login.id,
        owner_id=login.owner_id,
        grantee_id=actor.id,
        status=204,
        detail=_detail(actor.username, share.role),
    )
    db.session.delete(share)
    db.session.commit()


def _own_share(actor: Actor, share_id: int) -> tuple[LoginShare, EventoryLogin]:
    found = db.session.execute(
        select(LoginShare, EventoryLogin)
        .join(EventoryLogin, EventoryLogin.id == LoginShare.login_id)
        .where(LoginShare.id == share_id, LoginShare.grantee_id == actor.id)
    ).first()
    if found is None:
        raise ShareNotFound()
    return found[0], found[1]


def _pending_count(grantee_id: int) -> int:
    query = select(func.count()).where(LoginShare.grantee_id == grantee_id, LoginShare.accepted.is_(False))
    return db.session.execute(query).scalar_one()


def _declined_lately(login_id: int, grantee_id: int) -> bool:
    query = select(ShareDecline.id).where(
        ShareDecline.login_id == login_id,
        ShareDecline.grantee_id == grantee_id,
        ShareDecline.declined_at > utcnow() - DECLINED_FOR,
    )
    return db.session.execute(query).first() is not None


def _detail(username: str, role: str) -> str:
    """The share an event is about. The username is quoted (JSON's escapes), so no name, however
    it was chosen, can make a detail say something else."""
    return f"grantee={json.dumps(username, ensure_ascii=False)} role={role}"
