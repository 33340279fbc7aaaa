from __future__ import annotations

import marshmallow as ma

from ..web.fields import Digits, StrictSchema
from .services import ACTIONS


class AuditQuerySchema(StrictSchema):
    login_id = Digits()
    limit = Digits(load_default=50, validate=ma.validate.Range(min=1, max=200), metadata={"minimum": 1, "maximum": 200})
    cursor = Digits(
        error_messages={"invalid": "Not a cursor this server gave; send `next` from the previous page as it came."},
        metadata={"description": "`next` of the previous page."},
    )


class AuditEventSchema(ma.Schema):
    id = ma.fields.Integer()
    at = ma.fields.AwareDateTime(metadata={"description": "When, in UTC."})
    actor = ma.fields.String(metadata={"description": "The account that acted (its username)."})
    login_id = ma.fields.Integer()
    action = ma.fields.String(metadata={"enum": list(ACTIONS)})
    method = ma.fields.String(allow_none=True, metadata={"description": "Relays: the HTTP method."})
    path = ma.fields.String(allow_none=True, metadata={"description": "Relays: Eventory's path, no query string."})
    status = ma.fields.Integer(
        allow_none=True, metadata={"description": "Eventory's status, or the backend's own when it refused or failed."}
    )
    detail = ma.fields.String(
        allow_none=True,
        metadata={"description": 'The changed fields, or the share: `grantee="<username>" role=<role>`.'},
    )
    count = ma.fields.Integer(
        metadata={
            "description": "Refusals of one kind (action, method, status) by one account on one login, less "
            "than a minute apart, are one event: how many. `at` and `path` are the latest; its place in the "
            "pages is the first's."
        }
    )


class AuditPageSchema(ma.Schema):
    events = ma.fields.List(ma.fields.Nested(AuditEventSchema))
    next = ma.fields.String(allow_none=True, metadata={"description": "The cursor of the next page; null on the last."})
