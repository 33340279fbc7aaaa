from __future__ import annotations

import marshmallow as ma
from flask import current_app
from marshmallow import ValidationError, validates, validates_schema

from ..validation import StrictSchema, Text

PASSWORD_MAX_LENGTH = 1024


class UserSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    username = ma.fields.String(dump_only=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)


class RegisterSchema(StrictSchema):
    username = Text(required=True, min_length=3, max_length=64, trim=True)
    password = Text(required=True, load_only=True, max_length=PASSWORD_MAX_LENGTH)

    @validates("password")
    def _long_enough(self, value: str, **_kwargs) -> None:
        minimum = current_app.config["PASSWORD_MIN_LENGTH"]
        if len(value) < minimum:
            raise ValidationError(f"Use at least {minimum} characters; a passphrase of a few words is easiest.")

    @validates_schema
    def _not_the_username(self, data: dict, **_kwargs) -> None:
        username, password = data.get("username"), data.get("password")
        if username and password and password.strip().casefold() == username.casefold():
            raise ValidationError("The password must not be the username.", "password")


class PasswordLoginSchema(ma.Schema):
    """The OAuth2 password form (also as multipart or JSON); OAuth2's extra fields are ignored."""

    class Meta:
        unknown = ma.EXCLUDE

    username = Text(required=True, max_length=256)
    password = Text(required=True, load_only=True, max_length=PASSWORD_MAX_LENGTH)
    grant_type = ma.fields.String(validate=ma.validate.OneOf(["password"]), load_only=True)
    scope = ma.fields.String(load_only=True)


class TokenSchema(ma.Schema):
    access_token = ma.fields.String(required=True)
    token_type = ma.fields.String(required=True, metadata={"example": "bearer"})
    expires_in = ma.fields.Integer(required=True, metadata={"description": "Seconds until the access token expires."})
