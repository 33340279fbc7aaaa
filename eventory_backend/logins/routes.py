from __future__ import annotations

from flask import current_app
from flask_jwt_extended import current_user

from .. import limits
from ..auth.guard import login_required
from ..web.api import Blueprint
from . import services
from .listing_without_orm import login_summaries
from .schemas import LoginCreateSchema, LoginSchema, LoginUpdateSchema

blp = Blueprint("logins", __name__, url_prefix="/logins", description="The current user's saved Eventory logins.")


@blp.get("")
@login_required
@blp.response(200, LoginSchema(many=True))
def list_logins():
    """List your saved Eventory logins (passwords only if the server exposes them)."""
    if current_app.config["LOGINS_EXPOSE_PASSWORDS"]:
        return [services.with_password(login) for login in services.list_logins(current_user.id)]
    # Already in LoginSchema's shape (see listing_without_orm.py): sent as it is, not dumped again.
    return current_app.json.response(login_summaries(current_user.id))


@blp.post("")
@login_required
@limits.logins_write_per_user
@blp.arguments(LoginCreateSchema)
@blp.response(201, LoginSchema)
def create_login(fields):
    """Save an Eventory login; its password is encrypted before it is stored."""
    return services.add_login(current_user.id, current_app.config["MAX_LOGINS_PER_USER"], **fields)


@blp.get("/<id:login_id>")
@login_required
@blp.response(200, LoginSchema)
def get_login(login_id):
    """One of your saved Eventory logins."""
    return services.get_login(current_user.id, login_id)


@blp.put("/<id:login_id>")
@login_required
@limits.logins_write_per_user
@blp.arguments(LoginUpdateSchema)
@blp.response(200, LoginSchema)
def update_login(fields, login_id):
    """Change any of a saved login's label, username, password or colour."""
    return services.update_login(current_user.id, login_id, fields)


@blp.delete("/<id:login_id>")
@login_required
@limits.logins_write_per_user
@blp.response(204)
def delete_login(login_id):
    """Forget a saved Eventory login."""
    services.delete_login(current_user.id, login_id)
