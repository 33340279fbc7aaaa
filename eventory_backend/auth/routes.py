from __future__ import annotations

from flask import current_app
from werkzeug.exceptions import Forbidden

from .. import ratelimit
from ..web.api import Blueprint
from . import services, tokens
from .guard import current_account, login_required, refresh_token_required, token_claims
from .schemas import (
    AccountDeletionSchema,
    PasswordChangeSchema,
    PasswordLoginSchema,
    RegisterSchema,
    TokenSchema,
    UserSchema,
)

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Accounts on this backend.")

FORM_TYPES = ("multipart/form-data", "application/json")


@blp.post("/register")
@ratelimit.register_per_address
@blp.arguments(RegisterSchema)
@blp.response(201, UserSchema)
def register(fields):
    """Create an account."""
    if not current_app.config["REGISTRATION_OPEN"]:
        raise Forbidden("Registration is closed on this server; ask its administrator for an account.")
    return services.register_user(fields["username"], fields["password"])


@blp.post("/login")
@ratelimit.login_per_address
@ratelimit.login_per_username
@blp.arguments(PasswordLoginSchema, location="json_or_form")
@blp.response(200, TokenSchema)
@blp.doc(
    requestBody={"content": {kind: {"schema": {"$ref": "#/components/schemas/PasswordLogin"}} for kind in FORM_TYPES}}
)
def login(fields):
    """Log in with a username and password (OAuth2 password form, multipart form or JSON)."""
    user = services.authenticate(fields["username"], fields["password"], ratelimit.client_address())
    return tokens.issue_tokens(user)


@blp.post("/refresh")
@refresh_token_required
@blp.response(200, TokenSchema)
@blp.doc(description="Send the refresh token as the bearer token. The old refresh token ends.")
def refresh():
    """Trade a refresh token for a new access token and refresh token."""
    return tokens.rotate(current_account(), token_claims())


@blp.post("/logout")
@login_required
@blp.response(204)
def logout():
    """End the token this request was made with (and its refresh token)."""
    tokens.revoke(token_claims())


@blp.post("/logout-all")
@login_required
@blp.response(204)
def logout_all():
    """End every token of this account, on every device."""
    tokens.revoke_all(services.get_account(current_account().id))


@blp.get("/me")
@login_required
@blp.response(200, UserSchema)
def me():
    """The account the bearer token belongs to."""
    return services.get_account(current_account().id)


@blp.delete("/me")
@login_required
@ratelimit.password_per_user
@blp.arguments(AccountDeletionSchema)
@blp.response(204)
def delete_me(fields):
    """Delete this account, its Eventory logins and all its tokens (asks for the password)."""
    user = services.get_account(current_account().id)
    services.verify_password(user, fields["password"])
    services.delete_account(user)


@blp.put("/password")
@login_required
@ratelimit.password_per_user
@blp.arguments(PasswordChangeSchema)
@blp.response(200, TokenSchema)
def change_password(fields):
    """Change the password; every other token ends and this call returns a fresh pair."""
    user = services.get_account(current_account().id)
    return services.change_password(user, fields["current_password"], fields["new_password"])
