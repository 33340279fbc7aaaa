"""Field types and rules shared by the schemas of several blueprints."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import marshmallow as ma
from marshmallow import ValidationError


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


class StrictSchema(ma.Schema):
    """Unknown fields (say `owner_id`) are refused, not ignored."""

    class Meta:
        unknown = ma.RAISE


def folded(name: str) -> str:
    """The form in which two names compare equal: trimmed, NFKC-normalised, case-folded."""
    return unicodedata.normalize("NFKC", name.strip()).casefold()
