"""URL converters: database ids and the rest of a path, as the proxy needs it."""

from __future__ import annotations

import re

from flask import Flask
from flask_smorest import Api
from werkzeug.routing import BaseConverter

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


def init_app(app: Flask, api: Api) -> None:
    """`<id:...>` and `<anypath:...>` in routes, and in the OpenAPI document."""
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["anypath"] = AnyPathConverter
    app.url_map.merge_slashes = False
    api.register_converter(IdConverter, IdConverter.openapi_schema)
    api.register_converter(AnyPathConverter, AnyPathConverter.openapi_schema)
