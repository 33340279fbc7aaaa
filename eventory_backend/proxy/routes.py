from __future__ import annotations

from urllib.parse import unquote

from flask import Request, Response, current_app, request

from .. import ratelimit
from ..auth.guard import current_account, identified, login_required
from ..errors import FieldInvalid
from ..logins import services as logins
from ..logins.schemas import LoginSchema
from ..web.api import Blueprint
from ..web.converters import parse_id
from ..web.middleware import CHAIN, PEER
from . import checks, fanout, logos, services
from .forwarding import RELAYED_ANSWER_HEADERS, checked_path, request_headers, response_headers
from .schemas import FANOUT_DOC, RELAY_DOC, FanOutSchema, SessionSchema
from .upstream import CHUNK, REPLAYABLE_BODY, Body, EventoryRequest, upstream

blp = Blueprint("proxy", __name__, description="Eventory, relayed and brokered.")

RELAY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


@blp.route("/eventory/<anypath:path>", methods=RELAY_METHODS)
@blp.doc(**RELAY_DOC)
@identified
@ratelimit.proxy_per_user
def relay(path: str):
    """Relay a request to Eventory."""
    current = _current_request()
    headers = current.headers
    config = current_app.config
    target = _target(current, path, "/eventory/")
    auth = services.eventory_auth(
        current.method,
        target,
        login_header=headers.get("X-Eventory-Login"),
        client_token=headers.get("X-Eventory-Authorization"),
        authorization=headers.get("Authorization"),
        public=config["PROXY_PUBLIC"],
    )
    answer = services.relay(
        EventoryRequest(
            current.method,
            target,
            query=current.query_string.decode("latin-1"),
            headers=_forward_headers(current),
            body=_request_body(current, config["PROXY_MAX_BODY"]),
        ),
        auth,
    )
    response = Response(
        answer.body,
        status=answer.status,
        headers=response_headers(answer, upstream(), f"{current.script_root}/eventory"),
        direct_passthrough=True,
    )
    if answer.header("Content-Type") is None:
        del response.headers["Content-Type"]
    return response


@blp.post("/logins/<id:login_id>/session")
@login_required
@ratelimit.proxy_per_user
@blp.response(200, SessionSchema)
def open_session(login_id: int):
    """Sign in to Eventory with a stored login (yours or shared with you, not a read-only one) and
    return the Eventory token and organisation."""
    return services.open_session(login_id)


@blp.post("/logins/<id:login_id>/check")
@login_required
@ratelimit.proxy_per_user
@blp.response(200, LoginSchema)
def check_login(login_id: int):
    """Sign in to Eventory with a stored login now (its owner and managers; at most once a minute per
    credentials, the last outcome in between) and return the login with its status."""
    return checks.check_login(current_account().id, login_id)


@blp.get("/logins/<id:login_id>/logo")
@login_required
@ratelimit.proxy_per_user
@blp.doc(responses={"200": {"description": "The logo, as Eventory sent it."}, "304": {"description": "Not modified."}})
def login_logo(login_id: int):
    """The organisation's logo of a stored login, kept for a day (ETag; If-None-Match answers 304);
    counted by the proxy limit like any brokered call."""
    logo = logos.logo_of(current_account().id, login_id)
    headers = [*RELAYED_ANSWER_HEADERS, ("Cache-Control", f"private, max-age={logos.MAX_AGE}")]
    if request.if_none_match.contains_weak(logo.etag):
        response = Response(status=304, headers=headers)
    else:
        response = Response(logo.data, content_type=logo.content_type, headers=headers)
    response.set_etag(logo.etag)
    return response


def _logins_called() -> int:
    """How many logins this fan-out calls: what it counts against the proxy limit."""
    _query, login_ids = _split_logins_parameter(request.query_string.decode("latin-1"))
    return logins.count_usable(current_account().id, login_ids)


@blp.get("/multisite/<anypath:path>")
@login_required
@ratelimit.proxy_per_user_times(_logins_called)
@blp.response(200, FanOutSchema)
@blp.doc(**FANOUT_DOC)
def fan_out(path: str):
    """Run one GET against every login you may use (your own and those shared with you), or the
    chosen ones, in parallel."""
    current = _current_request()
    target = _target(current, path, "/multisite/")
    query, login_ids = _split_logins_parameter(current.query_string.decode("latin-1"))
    headers = {name: value for name, value in _forward_headers(current).items() if name.lower() != "accept-encoding"}
    results = fanout.fan_out(
        current_account().id,
        EventoryRequest("GET", target, query=query, headers=headers),
        login_ids=login_ids,
        concurrency=current_app.config["FANOUT_CONCURRENCY"],
        per_login_timeout=float(current_app.config["FANOUT_TIMEOUT"]),
        max_bytes=current_app.config["FANOUT_MAX_BYTES"],
    )
    return {"results": results}


def _current_request() -> Request:
    """The request itself, so the relay's many reads of it go through Flask's proxy once."""
    return request._get_current_object()  # type: ignore[attr-defined]


def _target(current: Request, path: str, route: str) -> str:
    """The path to request below the Eventory base, as the client encoded it; 400 if it could leave it."""
    environ = current.environ
    raw_uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    return checked_path(path, raw_uri, f"{current.script_root}{route}")


def _forward_headers(current: Request) -> dict[str, str]:
    headers = request_headers(current.headers.items(), current.headers.get("Connection"))
    # The chain a trusted reverse proxy reported, then the address that connected to us.
    environ = current.environ
    peer = environ.get(PEER) or current.remote_addr or ""
    earlier = environ.get(CHAIN)
    headers["X-Forwarded-For"] = f"{earlier}, {peer}" if earlier else peer
    headers["X-Forwarded-Proto"] = current.scheme
    return headers


def _request_body(current: Request, max_body: int) -> Body:
    if (
        current.method in ("GET", "HEAD")
        and not current.content_length
        and "chunked" not in current.headers.get("Transfer-Encoding", "").lower()
    ):
        return Body(None)
    current.max_content_length = max_body
    length = current.content_length
    stream = current.stream  # 413 past PROXY_MAX_BODY, checked as the body is read
    if length is not None and length <= REPLAYABLE_BODY:
        return Body(stream.read(), length)
    if length is not None:
        return Body(stream, length)
    return Body(iter(lambda: stream.read(CHUNK), b""))


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
            raise FieldInvalid("logins", "logins must be a comma-separated list of login ids.")
        login_ids = (login_ids or []) + [login_id for login_id in ids if login_id is not None]
    return "&".join(kept), login_ids
