from __future__ import annotations

from flask import current_app
from flask_jwt_extended import current_user
from werkzeug.exceptions import Forbidden

from ..api import Blueprint
from ..security import login_required
from . import services
from .schemas import PasswordLoginSchema, RegisterSchema, TokenSchema, UserSchema

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Accounts on this backend.")

FORM_TYPES = ("multipart/form-data", "application/json")


@blp.post("/register")
@blp.arguments(RegisterSchema)
@blp.response(201, UserSchema)
def register(fields):
    """Create an account."""
    if not current_app.config["REGISTRATION_OPEN"]:
        raise Forbidden("Registration is closed on this server; ask its administrator for an account.")
    return services.register_user(fields["username"], fields["password"])


@blp.post("/login")
@blp.arguments(PasswordLoginSchema, location="json_or_form")
@blp.response(200, TokenSchema)
@blp.doc(
    requestBody={"content": {kind: {"schema": {"$ref": "#/components/schemas/PasswordLogin"}} for kind in FORM_TYPES}}
)
def login(fields):
    """Log in with a username and password (OAuth2 password form, multipart form or JSON)."""
    user = services.authenticate(fields["username"], fields["password"])
    return services.issue_token(user)


@blp.get("/me")
@login_required
@blp.response(200, UserSchema)
def me():
    """The account the bearer token belongs to."""
    return current_user
