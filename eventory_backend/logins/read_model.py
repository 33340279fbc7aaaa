"""Logins as one account sees them: its own and those shared with it (accepted), each with how it
reaches them (`role`, `shared`, `owner`, `share_id`) and no username for a `use` grantee. One Core
query, read as plain rows; the routes dump the result through LoginSchema like any other answer."""

from __future__ import annotations

from sqlalchemy import and_, bindparam, or_, select

from ..auth.services import User
from ..extensions import db
from .health import logo_url
from .models import OWNER, USE, EventoryLogin, LoginShare

# The share through which the caller (bound as `user_id`) reaches a login: theirs, and accepted (an
# invitation reaches nothing). Every query of what a caller reaches joins on this one condition.
CALLERS_SHARE = and_(
    LoginShare.login_id == EventoryLogin.id,
    LoginShare.grantee_id == bindparam("user_id"),
    LoginShare.accepted.is_(True),
)

# The caller's own logins and those shared with them, with the owner's name and the caller's share.
_VISIBLE = (
    select(
        EventoryLogin.id,
        EventoryLogin.label,
        EventoryLogin.username,
        EventoryLogin.color,
        EventoryLogin.organisation,
        EventoryLogin.read_only,
        EventoryLogin.created_at,
        EventoryLogin.updated_at,
        EventoryLogin.status,
        EventoryLogin.checked_at,
        EventoryLogin.owner_id,
        User.username.label("owner"),
        LoginShare.id.label("share_id"),
        LoginShare.role,
    )
    .join(User, User.id == EventoryLogin.owner_id)
    .outerjoin(LoginShare, CALLERS_SHARE)
    .where(or_(EventoryLogin.owner_id == bindparam("user_id"), LoginShare.id.is_not(None)))
    .order_by(EventoryLogin.id)
)
_ONE = _VISIBLE.where(EventoryLogin.id == bindparam("login_id"))


def visible_logins(user_id: int, login_id: int | None = None) -> list[dict]:
    """The logins `user_id` sees (or only `login_id`, when they see it), with LoginSchema's fields."""
    statement = _VISIBLE if login_id is None else _ONE
    with db.engine.connect() as connection:
        rows = connection.execute(statement, {"user_id": user_id, "login_id": login_id}).mappings().all()
    return [_visible(row, user_id) for row in rows]


def _visible(row, user_id: int) -> dict:
    owned = row["owner_id"] == user_id
    role = OWNER if owned else row["role"]
    return {
        "id": row["id"],
        "label": row["label"],
        "username": None if role == USE else row["username"],
        "color": row["color"],
        "organisation": row["organisation"],
        "read_only": bool(row["read_only"]),
        "shared": not owned,
        "owner": row["owner"],
        "role": role,
        "share_id": None if owned else row["share_id"],
        "status": row["status"],
        "checked_at": row["checked_at"],
        "logo_url": logo_url(row["id"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
