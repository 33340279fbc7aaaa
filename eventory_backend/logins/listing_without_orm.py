"""A workaround: `GET /logins` reads plain rows and answers them in `LoginSchema`'s shape itself,
without loading ORM objects or running the schema's dump.

Why: loading ORM objects and running the schema's dump is most of what a listing costs
(bench/README.md has the figure, well past the 5% of a relayed request that justifies going
around a library). The shape is LoginSchema's without the password (which this route only
shows when BACKEND_LOGINS_EXPOSE_PASSWORDS is on, through the schema).

Checked against SQLAlchemy 2.1 and marshmallow 4.4: tests/test_library_workarounds.py holds the
rows equal to LoginSchema's dump of the same logins, so a change in either (a new field, another
date format) fails there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select

from ..extensions import db
from .health import logo_url
from .models import EventoryLogin

# Built once; read on a connection held only for this query.
_SUMMARIES = (
    select(
        EventoryLogin.id,
        EventoryLogin.label,
        EventoryLogin.username,
        EventoryLogin.color,
        EventoryLogin.organisation,
        EventoryLogin.created_at,
        EventoryLogin.updated_at,
        EventoryLogin.status,
        EventoryLogin.checked_at,
    )
    .where(EventoryLogin.owner_id == bindparam("owner_id"))
    .order_by(EventoryLogin.id)
)


def login_summaries(owner_id: int) -> list[dict]:
    """The owner's logins as GET /logins shows them, ready for JSON."""
    with db.engine.connect() as connection:
        rows = connection.execute(_SUMMARIES, {"owner_id": owner_id}).mappings().all()
    return [
        {
            **row,
            "created_at": _iso(row["created_at"]),
            "updated_at": _iso(row["updated_at"]),
            "checked_at": _iso(row["checked_at"]),
            "logo_url": logo_url(row["id"]),
        }
        for row in rows
    ]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
