"""flask-smorest's Api and Blueprint, adapted to the backend's one error shape."""

from __future__ import annotations

import flask_smorest
import marshmallow as ma
from werkzeug.routing import BaseConverter, ValidationError


class ErrorSchema(ma.Schema):
    """Every error body: one sentence, plus the fields at fault on 422."""

    detail = ma.fields.String(required=True, metadata={"description": "What went wrong, in one sentence."})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={"description": "On 422: the messages for each field at fault."},
    )


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):
        from .errors import http_error_response

        return http_error_response(error)


class Blueprint(flask_smorest.Blueprint):
    # "json_or_form" reads a JSON body or a form (urlencoded or multipart), as webargs does;
    # its primary documented type is the OAuth2 password form.
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "json_or_form": "application/x-www-form-urlencoded",
    }


class IdConverter(BaseConverter):
    """A database id in a URL: ASCII digits only, at most 2**63 - 1; anything else is a 404."""

    regex = r"[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > 2**63 - 1:
            raise ValidationError()
        return number

    @staticmethod
    def openapi_schema(_converter) -> dict:
        return {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1}

    def to_url(self, value) -> str:
        return str(int(value))
