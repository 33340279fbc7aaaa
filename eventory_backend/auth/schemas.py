from __future__ import annotations

import marshmallow as ma
from marshmallow import ValidationError, validates, validates_schema

from ..web.fields import StrictSchema, Text
from .policy import MAX_LENGTH, USERNAME_LENGTH, password_problems, username_problem


class UserSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    username = ma.fields.String(dump_only=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)


class RegisterSchema(StrictSchema):
    username = Text(
        required=True,
        min_length=USERNAME_LENGTH[0],
        max_length=USERNAME_LENGTH[1],
        trim=True,
        metadata={"description": "Letters, digits and . _ @ - (no spaces)."},
    )
    password = Text(required=True, load_only=True, max_length=MAX_LENGTH)

    @validates("username")
    def _username(self, username: str, **_kwargs) -> None:
        problem = username_problem(username)
        if problem:
            raise ValidationError(problem)

    @validates_schema
    def _policy(self, data: dict, **_kwargs) -> None:
        if "password" in data:
            problems = password_problems(data["password"], data.get("username"))
            if problems:
                raise ValidationError(problems, "password")


class PasswordLoginSchema(ma.Schema):
    """The OAuth2 password form (also as multipart or JSON); OAuth2's extra fields are ignored."""

    class Meta:
        unknown = ma.EXCLUDE

    username = Text(required=True, max_length=256)
    password = Text(required=True, load_only=True, max_length=MAX_LENGTH)
    grant_type = ma.fields.String(validate=ma.validate.OneOf(["password"]), load_only=True)
    scope = ma.fields.String(load_only=True)


class PasswordChangeSchema(StrictSchema):
    current_password = Text(required=True, load_only=True, max_length=MAX_LENGTH)
    new_password = Text(required=True, load_only=True, max_length=MAX_LENGTH)


class AccountDeletionSchema(StrictSchema):
    password = Text(required=True, load_only=True, max_length=MAX_LENGTH)


class TokenSchema(ma.Schema):
    access_token = ma.fields.String(required=True)
    token_type = ma.fields.String(required=True, metadata={"example": "bearer"})
    expires_in = ma.fields.Integer(required=True, metadata={"description": "Seconds until the access token expires."})
    refresh_token = ma.fields.String(
        required=True, metadata={"description": "Send as the bearer token to POST /auth/refresh for a new pair."}
    )
