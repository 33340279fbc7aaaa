from __future__ import annotations

from urllib.parse import unquote

import marshmallow as ma
from flask import Response, current_app, request
from flask_jwt_extended import current_user
from werkzeug.exceptions import NotFound, UnprocessableEntity

from .. import limits
from ..api import Blueprint, parse_id
from ..forwarded import CHAIN, PEER
from ..security import SECURITY, is_backend_token, login_required, verified_claims
from . import services
from .upstream import REPLAYABLE_BODY, Body, checked_path, request_headers, response_headers, started_body, upstream

blp = Blueprint("proxy", __name__, description="Eventory, relayed and brokered.")

RELAY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


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


def _login_id(value: str) -> int:
    login_id = parse_id(value)
    if login_id is None:
        raise NotFound("No Eventory login with that id.")
    return login_id


def _target(path: str, route: str) -> str:
    """The path to request below the Eventory base, as the client encoded it; 400 if it could leave it."""
    raw_uri = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI")
    return checked_path(path, raw_uri, f"{request.script_root}{route}")


def _forward_headers() -> dict[str, str]:
    headers = request_headers(request.headers.items(), request.headers.get("Connection"))
    # The chain a trusted reverse proxy reported, then the address that connected to us.
    peer = request.environ.get(PEER) or request.remote_addr or ""
    earlier = request.environ.get(CHAIN)
    headers["X-Forwarded-For"] = f"{earlier}, {peer}" if earlier else peer
    headers["X-Forwarded-Proto"] = request.scheme
    return headers


def _request_body() -> Body:
    if (
        request.method in ("GET", "HEAD")
        and not request.content_length
        and "chunked" not in request.headers.get("Transfer-Encoding", "").lower()
    ):
        return Body(None)
    request.max_content_length = current_app.config["PROXY_MAX_BODY"]
    length = request.content_length
    stream = request.stream  # 413 past PROXY_MAX_BODY, checked as the body is read
    if length is not None and length <= REPLAYABLE_BODY:
        return Body(stream.read(), length)
    if length is not None:
        return Body(stream, length)
    return Body(iter(lambda: stream.read(64 * 1024), b""))


def _proxy_prefix() -> str:
    return f"{request.script_root}/eventory"


@blp.route("/eventory/<anypath:path>", methods=RELAY_METHODS)
@blp.doc(**RELAY_DOC)
@limits.proxy_per_user
def relay(path: str):
    """Relay a request to Eventory."""
    target = _target(path, "/eventory/")
    headers = _forward_headers()
    login_header = request.headers.get("X-Eventory-Login")
    client_token = request.headers.get("X-Eventory-Authorization")
    credentials = None
    if current_app.config["PROXY_PUBLIC"] and login_header is None and client_token is None:
        authorization = request.headers.get("Authorization")
        if authorization is not None and not is_backend_token(authorization):
            headers["Authorization"] = authorization
    else:
        verified_claims()
        if login_header is not None:
            credentials = services.credentials_for(current_user.id, _login_id(login_header.strip()))
        elif client_token is not None:
            headers["Authorization"] = client_token
    services.release_database()

    body = _request_body()
    answer = services.relay(
        request.method,
        target,
        query=request.query_string.decode("latin-1"),
        headers=headers,
        body=body,
        credentials=credentials,
    )
    response = Response(
        started_body(answer),
        status=answer.status_code,
        headers=response_headers(answer, upstream(), _proxy_prefix()),
        direct_passthrough=True,
    )
    if "content-type" not in answer.headers:
        del response.headers["Content-Type"]
    return response


@blp.post("/logins/<id:login_id>/session")
@login_required
@limits.proxy_per_user
@blp.response(200, SessionSchema)
def open_session(login_id: int):
    """Sign in to Eventory with a stored login and return the Eventory token and organisation."""
    return services.open_session(current_user.id, login_id)


@blp.get("/multisite/<anypath:path>")
@login_required
@limits.proxy_per_user
@blp.response(200, FanOutSchema)
@blp.doc(
    parameters=[
        {
            "in": "query",
            "name": "logins",
            "required": False,
            "schema": {"type": "string"},
            "description": "Comma-separated login ids; all of yours when absent. Other parameters go to Eventory.",
        }
    ]
)
def fan_out(path: str):
    """Run one GET against every saved login (or the chosen ones) in parallel."""
    target = _target(path, "/multisite/")
    query, login_ids = _split_logins_parameter(request.query_string.decode("latin-1"))
    headers = {name: value for name, value in _forward_headers().items() if name.lower() != "accept-encoding"}
    results = services.fan_out(current_user.id, target, query=query, headers=headers, login_ids=login_ids)
    return {"results": results}


def _split_logins_parameter(query: str) -> tuple[str, list[int] | None]:
    """Take `logins=1,4,7` out of the query string; the rest goes to Eventory exactly as sent."""
    kept, login_ids = [], None
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        if unquote(name) != "logins":
            kept.append(part)
            continue
        ids = [parse_id(item.strip()) for item in unquote(value).split(",") if item.strip()]
        if not ids or None in ids:
            raise UnprocessableEntity("logins must be a comma-separated list of login ids.")
        login_ids = (login_ids or []) + [login_id for login_id in ids if login_id is not None]
    return "&".join(kept), login_ids
