"""flask-smorest's Api and Blueprint, adapted to the backend's one error shape."""

from __future__ import annotations

import json
import re

import flask_smorest
import marshmallow as ma
from webargs.flaskparser import FlaskParser
from werkzeug.routing import BaseConverter


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


class ArgumentsParser(FlaskParser):
    """webargs' parser, with every unreadable JSON body a 400 (not only syntax errors)."""

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError):
            # Nesting deeper than the decoder's stack, or integers past Python's digit limit.
            # A non-empty doc: webargs reads an empty one as "no body sent" (a 422), not a bad body.
            raise json.JSONDecodeError("Nested too deeply, or a number too long.", "<body>", 0) from None


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ArgumentsParser()

    # "json_or_form" reads a JSON body or a form (urlencoded or multipart), as webargs does;
    # its primary documented type is the OAuth2 password form.
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "json_or_form": "application/x-www-form-urlencoded",
    }


# Ids are INTEGER columns: 32 bits on PostgreSQL, so no row has a larger id on any database.
MAX_ID = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")


def parse_id(text: str) -> int | None:
    """A database id written in ASCII digits (not other scripts' digits, as \\d would allow), or None."""
    if not _DIGITS.fullmatch(text) or int(text) > MAX_ID:
        return None
    return int(text)


class IdConverter(BaseConverter):
    """A database id in a URL.

    An id no row can have becomes -1, so it answers the same 404 as any missing id (a converter
    that refused it would turn PUT and DELETE into 405s, and the database would reject the number).
    """

    regex = r"[0-9]+"
    NO_ROW = -1

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        return self.NO_ROW if number is None else number

    @staticmethod
    def openapi_schema(_converter) -> dict:
        return {"type": "integer", "format": "int32", "minimum": 0, "maximum": MAX_ID}

    def to_url(self, value) -> str:
        return str(int(value))


class AnyPathConverter(BaseConverter):
    """The rest of the URL as it came, even empty, with leading or doubled slashes, so the
    proxy can refuse what could leave the Eventory base instead of Werkzeug redirecting it."""

    regex = r"[\s\S]*"  # "." would stop at a newline and turn a CR/LF attack into a 404
    part_isolating = False

    @staticmethod
    def openapi_schema(_converter) -> dict:
        return {"type": "string"}
