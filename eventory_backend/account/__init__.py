"""The account console: a page at /account, for a person, on the JSON API (see routes.py)."""

from .routes import blp

__all__ = ["blp"]
