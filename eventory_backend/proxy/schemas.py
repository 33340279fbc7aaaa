"""What the proxy's routes answer, and how the relay and the fan-out are documented."""

from __future__ import annotations

import marshmallow as ma

from ..auth.guard import SECURITY
from ..logins.health import STATUSES


class SessionSchema(ma.Schema):
    access_token = ma.fields.String(required=True, metadata={"description": "An Eventory token for this login."})
    token_type = ma.fields.String(required=True)
    organisation = ma.fields.String(allow_none=True)
    first_name = ma.fields.String(allow_none=True)
    last_name = ma.fields.String(allow_none=True)


class FanOutResultSchema(ma.Schema):
    login_id = ma.fields.Integer()
    label = ma.fields.String()
    organisation = ma.fields.String(allow_none=True)
    color = ma.fields.String()
    status = ma.fields.Integer(
        allow_none=True, metadata={"description": "Eventory's status, or null without an answer."}
    )
    data = ma.fields.Raw(allow_none=True, metadata={"description": "Eventory's JSON answer, or null."})
    error = ma.fields.String(allow_none=True)
    elapsed_ms = ma.fields.Float()
    login_status = ma.fields.String(
        metadata={"enum": list(STATUSES), "description": "How the last sign-in with this login went."}
    )
    logo_url = ma.fields.String(metadata={"description": "The organisation's logo, served by this backend."})
    stale = ma.fields.Boolean(
        metadata={
            "description": "True when Eventory was down and `data` is its last good answer (BACKEND_STALE_IF_ERROR)."
        }
    )
    age_s = ma.fields.Integer(allow_none=True, metadata={"description": "A stale answer's age in seconds, else null."})


class FanOutSchema(ma.Schema):
    results = ma.fields.List(ma.fields.Nested(FanOutResultSchema))


RELAY_DOC = {
    "summary": "Relay a request to Eventory.",
    "description": (
        "Forwards the method, the rest of the path, the query string and the body to Eventory and streams its answer "
        "back. Send `X-Eventory-Login: <login id>` to have the backend sign in with a stored login, or "
        "`X-Eventory-Authorization: Bearer <Eventory token>` to use a token you hold."
    ),
    "security": SECURITY,
    "parameters": [
        {"in": "header", "name": "X-Eventory-Login", "schema": {"type": "string"}, "required": False},
        {"in": "header", "name": "X-Eventory-Authorization", "schema": {"type": "string"}, "required": False},
    ],
    "responses": {
        "200": {"description": "Eventory's answer, as Eventory sent it."},
        "default": {"description": "Eventory's own status and answer, or this backend's JSON error."},
    },
}


FANOUT_DOC = {
    "parameters": [
        {
            "in": "query",
            "name": "logins",
            "required": False,
            "schema": {"type": "string"},
            "description": "Comma-separated login ids; all of yours when absent. Other parameters go to Eventory.",
        }
    ]
}
