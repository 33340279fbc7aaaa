"""Every way talking to Eventory can fail, as the error the client is answered with."""

from __future__ import annotations

from werkzeug.exceptions import HTTPException


class EventoryUnavailable(HTTPException):
    code = 502
    description = "Eventory could not be reached; try again shortly."


class EventoryBrokenBody(Exception):
    """Eventory's answer broke off mid-body; the client's connection must close, not end cleanly."""


class EventoryRejectedLogin(HTTPException):
    code = 502
    description = "Eventory rejected the stored username or password of this login; update the login and try again."


class EventoryUnavailableForSignIn(HTTPException):
    code = 502
    description = "Eventory could not sign this login in right now; try again shortly."


class StoredPasswordUnreadable(HTTPException):
    code = 500
    description = "This login's stored password cannot be decrypted with the server's keys; save the login again."
