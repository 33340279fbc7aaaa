from __future__ import annotations

from flask import current_app

from .. import ratelimit
from ..auth.guard import current_account, login_required
from ..web.api import Blueprint
from . import services, shares
from .read_model import visible_logins
from .schemas import (
    IncomingShareSchema,
    LoginCreateSchema,
    LoginSchema,
    LoginUpdateSchema,
    ShareCreateSchema,
    ShareSchema,
    SharesSchema,
)

blp = Blueprint(
    "logins", __name__, url_prefix="/logins", description="Your saved Eventory logins, and those shared with you."
)
shares_blp = Blueprint(
    "shares", __name__, url_prefix="/shares", description="Logins others offer to share with you: accept or decline."
)


@blp.get("")
@login_required
@blp.response(200, LoginSchema(many=True))
def list_logins():
    """List your saved Eventory logins and those shared with you (passwords of your own only, and
    only if the server exposes them)."""
    if current_app.config["LOGINS_EXPOSE_PASSWORDS"]:
        return services.with_passwords(current_account().id)
    return visible_logins(current_account().id)


@blp.post("")
@login_required
@ratelimit.logins_write_per_user
@blp.arguments(LoginCreateSchema)
@blp.response(201, LoginSchema)
def create_login(fields):
    """Save an Eventory login; its password is encrypted before it is stored."""
    login_id = services.add_login(current_account(), current_app.config["MAX_LOGINS_PER_USER"], **fields)
    return services.login_view(current_account().id, login_id)


@blp.get("/<id:login_id>")
@login_required
@blp.response(200, LoginSchema)
def get_login(login_id):
    """One of your saved Eventory logins, or one shared with you."""
    return services.login_view(current_account().id, login_id)


@blp.put("/<id:login_id>")
@login_required
@ratelimit.logins_write_per_user
@blp.arguments(LoginUpdateSchema)
@blp.response(200, LoginSchema)
def update_login(fields, login_id):
    """Change any of a login's label, username, password, colour or read_only (its owner or a manager)."""
    services.update_login(current_account(), login_id, fields)
    return services.login_view(current_account().id, login_id)


@blp.delete("/<id:login_id>")
@login_required
@ratelimit.logins_write_per_user
@blp.response(204)
def delete_login(login_id):
    """Forget a saved Eventory login (its owner only); its shares end with it."""
    services.delete_login(current_account(), login_id)


@blp.post("/<id:login_id>/shares")
@login_required
@ratelimit.logins_write_per_user
@blp.arguments(ShareCreateSchema)
@blp.response(201, ShareSchema)
def share_login(fields, login_id):
    """Invite another account to use your login (`use`), or also change it (`manage`); it never
    sees the password, and reaches the login only once it accepts."""
    most = current_app.config["MAX_PENDING_SHARES"]
    return shares.share_login(current_account(), login_id, fields["username"], fields["role"], most)


@blp.get("/<id:login_id>/shares")
@login_required
@blp.response(200, SharesSchema)
def list_shares(login_id):
    """Who a login is shared with, and who is invited and has not accepted yet (its owner and managers)."""
    return {"shares": shares.list_shares(current_account(), login_id)}


@blp.delete("/<id:login_id>/shares/<id:share_id>")
@login_required
@ratelimit.logins_write_per_user
@blp.response(204)
def revoke_share(login_id, share_id):
    """End a share: the owner revokes it, or the grantee leaves it. It ends at once, on every instance."""
    shares.revoke_share(current_account(), login_id, share_id)


@shares_blp.get("/incoming")
@login_required
@shares_blp.response(200, IncomingShareSchema(many=True))
def list_incoming():
    """Logins others invite you to share, waiting for your answer."""
    return shares.incoming(current_account().id)


@shares_blp.post("/<id:share_id>/accept")
@login_required
@ratelimit.logins_write_per_user
@shares_blp.response(200, LoginSchema)
def accept_share(share_id):
    """Accept an invitation: the login joins your list and may be used. The login as you now see it."""
    login_id = shares.accept(current_account(), share_id)
    return services.login_view(current_account().id, login_id)


@shares_blp.delete("/<id:share_id>")
@login_required
@ratelimit.logins_write_per_user
@shares_blp.response(204)
def decline_share(share_id):
    """Decline an invitation (it cannot be sent to you again for a day), or leave a share you accepted."""
    shares.decline(current_account(), share_id)
