from __future__ import annotations

import re

import marshmallow as ma
from marshmallow import ValidationError, validates_schema

from ..web.fields import Flag, StrictSchema, Text
from .health import STATUSES
from .models import OWNER, SHARE_ROLES

DEFAULT_COLOR = "#1976d2"

_BYTE = r" *(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]) *"
_ALPHA = r" *(0|1|0?\.[0-9]+|1\.0+|[0-9]{1,2}%|100%) *"
COLOR_PATTERNS = (
    re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})"),
    re.compile(rf"rgb\({_BYTE},{_BYTE},{_BYTE}\)"),
    re.compile(rf"rgba\({_BYTE},{_BYTE},{_BYTE},{_ALPHA}\)"),
)


def css_color(value: str) -> None:
    # fullmatch, not match with $: "#fff\n" must not pass.
    if not any(pattern.fullmatch(value) for pattern in COLOR_PATTERNS):
        raise ValidationError("Use a CSS colour: #rgb, #rrggbb, #rrggbbaa, rgb(r, g, b) or rgba(r, g, b, a).")


def _color(**kwargs) -> ma.fields.String:
    return ma.fields.String(validate=[ma.validate.Length(max=64), css_color], **kwargs)


class LoginSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    label = ma.fields.String(dump_only=True)
    username = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "null for a login shared with you to `use`."}
    )
    color = ma.fields.String(dump_only=True)
    organisation = ma.fields.String(dump_only=True, allow_none=True)
    read_only = ma.fields.Boolean(
        dump_only=True, metadata={"description": "The broker sends only GET and HEAD with it, and opens no session."}
    )
    shared = ma.fields.Boolean(
        dump_only=True, metadata={"description": "true: another account owns it and shares it with you."}
    )
    owner = ma.fields.String(dump_only=True, metadata={"description": "The owner's username."})
    role = ma.fields.String(
        dump_only=True, metadata={"enum": [OWNER, *SHARE_ROLES], "description": "How you reach it."}
    )
    share_id = ma.fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Your share of it (DELETE it to leave); null on your own."},
    )
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)
    status = ma.fields.String(
        dump_only=True,
        metadata={"enum": list(STATUSES), "description": "How the last sign-in with this login went."},
    )
    checked_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    logo_url = ma.fields.String(dump_only=True, metadata={"description": "Where this backend serves its logo."})
    password = ma.fields.String(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Only in GET /logins, and only when BACKEND_LOGINS_EXPOSE_PASSWORDS=true."},
    )


class LoginCreateSchema(StrictSchema):
    label = Text(required=True, max_length=100, trim=True)
    username = Text(required=True, max_length=254)
    password = Text(required=True, load_only=True, max_length=1024)
    color = _color(load_default=DEFAULT_COLOR)
    read_only = Flag(load_default=False)


class LoginUpdateSchema(StrictSchema):
    label = Text(max_length=100, trim=True)
    username = Text(max_length=254)
    password = Text(load_only=True, max_length=1024)
    color = _color()
    read_only = Flag()

    @validates_schema
    def _something_to_change(self, data: dict, **_kwargs) -> None:
        if not data:
            raise ValidationError("Send at least one of label, username, password, color, read_only.")


class ShareCreateSchema(StrictSchema):
    username = Text(required=True, max_length=64, trim=True, metadata={"description": "The account to share with."})
    role = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(SHARE_ROLES),
        metadata={"description": "`use`: broker with it; `manage`: also change it (and see its username)."},
    )


class ShareSchema(ma.Schema):
    id = ma.fields.Integer()
    login_id = ma.fields.Integer()
    username = ma.fields.String(metadata={"description": "The grantee."})
    role = ma.fields.String(metadata={"enum": list(SHARE_ROLES)})
    accepted = ma.fields.Boolean(
        metadata={"description": "false: an invitation not accepted yet; it reaches nothing until then."}
    )
    created_at = ma.fields.AwareDateTime()


class IncomingShareSchema(ma.Schema):
    id = ma.fields.Integer(metadata={"description": "POST /shares/<id>/accept accepts, DELETE /shares/<id> declines."})
    login_id = ma.fields.Integer()
    label = ma.fields.String(metadata={"description": "The login's label (never its username or password)."})
    owner = ma.fields.String(metadata={"description": "The username of the account that offers it."})
    role = ma.fields.String(metadata={"enum": list(SHARE_ROLES)})
    created_at = ma.fields.AwareDateTime()


class SharesSchema(ma.Schema):
    shares = ma.fields.List(ma.fields.Nested(ShareSchema))
