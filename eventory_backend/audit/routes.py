from __future__ import annotations

import marshmallow as ma

from .. import ratelimit
from ..auth.guard import current_account, login_required
from ..web.api import Blueprint
from . import services
from .schemas import AuditPageSchema, AuditQuerySchema

blp = Blueprint("audit", __name__, url_prefix="/audit", description="What was done with saved logins, and by whom.")


@blp.get("")
@login_required
@ratelimit.audit_per_user
# unknown=RAISE: webargs would otherwise drop unknown query parameters, and a misspelt filter
# (`?login=3`) would answer every event instead of a 422.
@blp.arguments(AuditQuerySchema, location="query", as_kwargs=True, unknown=ma.RAISE)
@blp.response(200, AuditPageSchema)
def list_events(limit: int, login_id: int | None = None, cursor: int | None = None):
    """Audit events, newest first: every event of the logins you own (your grantees' too), your
    own actions elsewhere, and the shares offered to you."""
    found, more = services.events(current_account().id, login_id=login_id, limit=limit, before=cursor)
    return {"events": found, "next": str(found[-1].id) if more else None}
