"""A workaround: `GET /logins` (and each login's own answer) reads plain rows and answers them in
`LoginSchema`'s shape itself, without loading ORM objects or running the schema's dump.

Why: loading ORM objects and running the schema's dump is most of what a listing costs
(bench/README.md has the figure, well past the 5% of a relayed request that justifies going
around a library). The shape is LoginSchema's without the password (which the listing only
shows when BACKEND_LOGINS_EXPOSE_PASSWORDS is on, and then only of the caller's own logins).

Checked against SQLAlchemy 2.1 and marshmallow 4.4: tests/test_library_workarounds.py holds the
rows equal to LoginSchema's dump of the same logins, so a change in either (a new field, another
date format) fails there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, bindparam, or_, select

from ..auth.services import User
from ..extensions import db
from .health import logo_url
from .models import OWNER, USE, EventoryLogin, LoginShare

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
    .outerjoin(
        LoginShare,
        and_(
            LoginShare.login_id == EventoryLogin.id,
            LoginShare.grantee_id == bindparam("user_id"),
            LoginShare.accepted.is_(True),  # an invitation is not in the list until accepted
        ),
    )
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


def login_summaries(user_id: int) -> list[dict]:
    """The logins `user_id` sees as GET /logins shows them, ready for JSON (LoginSchema's dump, without running it)."""
    return [
        {
            **login,
            "created_at": _iso(login["created_at"]),
            "updated_at": _iso(login["updated_at"]),
            "checked_at": _iso(login["checked_at"]),
        }
        for login in visible_logins(user_id)
    ]


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


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
