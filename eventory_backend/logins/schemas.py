from __future__ import annotations

import re

import marshmallow as ma
from marshmallow import ValidationError, validates_schema

from ..web.fields import StrictSchema, Text
from .health import STATUSES, logo_url

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
    username = ma.fields.String(dump_only=True)
    color = ma.fields.String(dump_only=True)
    organisation = ma.fields.String(dump_only=True, allow_none=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)
    status = ma.fields.String(
        dump_only=True,
        metadata={"enum": list(STATUSES), "description": "How the last sign-in with this login went."},
    )
    checked_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    # A login, or with_password's dict of one.
    logo_url = ma.fields.Function(lambda login: logo_url(ma.utils.get_value(login, "id")), dump_only=True)
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


class LoginUpdateSchema(StrictSchema):
    label = Text(max_length=100, trim=True)
    username = Text(max_length=254)
    password = Text(load_only=True, max_length=1024)
    color = _color()

    @validates_schema
    def _something_to_change(self, data: dict, **_kwargs) -> None:
        if not data:
            raise ValidationError("Send at least one of label, username, password, color.")
