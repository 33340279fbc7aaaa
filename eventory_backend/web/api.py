"""flask-smorest's Api and Blueprint, adapted to the backend's one error shape, and the API docs."""

from __future__ import annotations

import json

import flask_smorest
import marshmallow as ma
from flask import Flask, send_from_directory
from swagger_ui_bundle import swagger_ui_path
from webargs.flaskparser import FlaskParser


class ErrorSchema(ma.Schema):
    """Every error body: one sentence, plus the fields at fault on 422."""

    detail = ma.fields.String(required=True, metadata={"description": "What went wrong, in one sentence."})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={"description": "On 422: the messages for each field at fault."},
    )


class Api(flask_smorest.Api):
    """Documents errors in the backend's shape; `errors.init_app` registers the handler that makes them."""

    ERROR_SCHEMA = ErrorSchema


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


def document_security(api: Api) -> None:
    """The bearer token, as OpenAPI security schemes the routes' `security` refers to."""
    components = api.spec.components
    if "bearerAuth" not in components.security_schemes:
        components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
        components.security_scheme(
            "OAuth2PasswordBearer",
            {"type": "oauth2", "flows": {"password": {"tokenUrl": "/auth/login", "scopes": {}}}},
        )


def serve_swagger_ui_files(app: Flask) -> None:
    """Swagger UI's scripts and styles from the swagger-ui-bundle package: /docs needs no internet."""

    @app.get("/docs/static/<path:filename>")
    def swagger_ui_static(filename: str):
        return send_from_directory(str(swagger_ui_path), filename)
