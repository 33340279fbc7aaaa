"""The bearer-token guard every protected view uses, and the user it loads."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from .api import Blueprint
from .extensions import db, jwt

SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"OAuth2PasswordBearer": []}]


@jwt.user_lookup_loader
def _load_user(_header: dict, payload: dict):
    from .auth.models import User  # auth's routes use this module

    try:
        user_id = int(payload["sub"])
    except (KeyError, TypeError, ValueError):
        return None
    return db.session.get(User, user_id)


def login_required(view):
    """jwt_required(), documented as the bearer security requirement."""
    return Blueprint.doc(security=SECURITY)(jwt_required()(view))
