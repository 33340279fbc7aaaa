"""Field types and rules shared by the schemas of several blueprints."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import marshmallow as ma
from marshmallow import ValidationError

from .converters import parse_id


def no_control_characters(value: str) -> None:
    # Cc: control characters (NUL included); Cs: lone surrogates, which no database can store.
    if any(unicodedata.category(char) in {"Cc", "Cs"} for char in value):
        raise ValidationError("Must not contain control characters.")


class Text(ma.fields.String):
    """A string with no control characters, optionally trimmed, with a length range."""

    def __init__(self, *, min_length: int = 1, max_length: int, trim: bool = False, **kwargs):
        self.trim = trim
        validators: list[Callable[[str], object]] = [
            ma.validate.Length(min=min_length, max=max_length),
            no_control_characters,
        ]
        super().__init__(validate=validators, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        return text.strip() if self.trim else text


class Flag(ma.fields.Boolean):
    """A JSON true or false, nothing else: not "yes", 1 or "false" (a string that reads as true)."""

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Digits(ma.fields.Field):
    """A whole number in a query string, written in ASCII digits only (int() would also read "١" or
    "１"), no larger than a database id."""

    default_error_messages = {"invalid": "Not a valid whole number."}

    def __init__(self, **kwargs):
        kwargs["metadata"] = {"type": "integer", "minimum": 0, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        number = parse_id(value) if isinstance(value, str) else None
        if number is None:
            raise self.make_error("invalid")
        return number


class StrictSchema(ma.Schema):
    """Unknown fields (say `owner_id`) are refused, not ignored."""

    class Meta:
        unknown = ma.RAISE


def folded(name: str) -> str:
    """The form in which two names compare equal: trimmed, NFKC-normalised, case-folded."""
    return unicodedata.normalize("NFKC", name.strip()).casefold()
