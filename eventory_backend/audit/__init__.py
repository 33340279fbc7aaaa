"""The audit: what was done with saved logins (writes through the broker, sessions, shares,
changes), kept in the database for BACKEND_AUDIT_DAYS and read at GET /audit."""

from .routes import blp

__all__ = ["blp"]
