"""The /eventory/ relay under a real waitress server against the fake Eventory: what crosses (paths,
queries, bodies, headers) and what does not, errors from Eventory, public mode, and the client's own token."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from flask_jwt_extended import create_access_token
from werkzeug.exceptions import BadRequest

from eventory_backend.proxy.forwarding import checked_path

from .fake_eventory import GZIP_BODY, download_sha256
from .helpers import EVENTORY_LOGIN, account, closed_port, save_login


def raw_request(live, target: str, headers: dict) -> tuple[int, bytes]:
    """A GET whose request line is exactly as written: no client-side normalisation of `..` or encodings."""
    parts = urlsplit(live.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("GET", target, skip_host=False, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def raw_get(live, target: str, headers: dict) -> int:
    return raw_request(live, target, headers)[0]


# --- what crosses --------------------------------------------------------------------------------


def test_query_string_is_forwarded_exactly(live, ada, eventory):
    query = "b=2&a=1&b=1&name=%C3%A5%20x&plus=a+b&empty=&flag"
    echoed = live.get(f"/eventory/echo/some/path?{query}", headers=ada).json()
    assert echoed["query"] == query
    assert echoed["path"] == "/echo/some/path"
    assert echoed["method"] == "GET"


@pytest.mark.parametrize(
    ("path", "query", "expected_path", "expected_query"),
    [
        # Percent-encodings stay encoded; urllib3 writes their hex digits in upper case (RFC 3986 6.2.2.1).
        ("echo/%7e/%41/%c3%a5", "c=%7e&s=%2f&S=%2F&p=a+b", "echo/%7E/%41/%C3%A5", "c=%7E&s=%2F&S=%2F&p=a+b"),
        ("echo/a%3Fb=1", "", "echo/a%3Fb=1", ""),
        ("echo/a%23frag", "", "echo/a%23frag", ""),
        ("echo/eventory/x", "n=1", "echo/eventory/x", "n=1"),
        ("echo/multisite/x", "", "echo/multisite/x", ""),
    ],
)
def test_path_and_query_reach_eventory_as_the_client_encoded_them(
    live, ada, eventory, path, query, expected_path, expected_query
):
    suffix = f"?{query}" if query else ""
    status, body = raw_request(live, f"/eventory/{path}{suffix}", ada)
    assert status == 200, body
    echoed = json.loads(body)
    assert (echoed["path"], echoed["query"]) == (f"/{expected_path}", expected_query)

    save_login(live, ada)
    status, body = raw_request(live, f"/multisite/{path}{suffix}", ada)
    assert status == 200, body
    (entry,) = json.loads(body)["results"]
    assert (entry["data"]["path"], entry["data"]["query"]) == (f"/{expected_path}", expected_query)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_request_body_reaches_eventory_intact(live, ada, eventory, method):
    body = bytes(range(256)) * 40_000  # 10 MB, past the in-memory size
    echoed = live.request(
        method, "/eventory/echo", data=body, headers={**ada, "Content-Type": "application/octet-stream"}
    ).json()
    assert echoed["method"] == method
    assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert echoed["body_length"] == len(body)


def test_chunked_request_body_is_streamed_on(live, ada, eventory):
    parts = [b"x" * 100_000] * 30
    echoed = live.post("/eventory/echo", data=iter(parts), headers=ada).json()
    assert echoed["body_sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()


def test_head_is_relayed_without_a_body(live, ada, eventory):
    response = live.request("HEAD", "/eventory/echo", headers=ada)
    assert response.status_code == 200
    assert response.content == b""


def test_body_over_the_proxy_limit_is_413_before_eventory_sees_it(make_app, serve, eventory):
    live = serve(make_app(PROXY_MAX_BODY=100_000))
    headers = account(live)
    eventory.reset()
    response = live.post("/eventory/echo", data=b"x" * 100_001, headers=headers)
    assert response.status_code == 413
    assert response.json()["detail"]
    assert eventory.requests == []


def test_binary_download_is_byte_for_byte(live, ada, eventory):
    size = 20 * 1024 * 1024
    response = live.get(f"/eventory/download?size={size}", headers=ada, stream=True)
    digest = hashlib.sha256()
    received = 0
    for chunk in response.iter_content(256 * 1024):
        digest.update(chunk)
        received += len(chunk)
    assert int(response.headers["Content-Length"]) == received == size
    assert digest.hexdigest() == download_sha256(size)


@pytest.mark.parametrize("brokered", [False, True], ids=["client-held", "brokered"])
def test_answers_read_to_their_end_leave_the_connection_to_eventory_open(live, ada, eventory, brokered):
    """The relay stops reading once an answer's Content-Length is in, without closing the
    connection: the next calls reuse it (a new connection per call would cost a handshake each)."""
    if brokered:
        headers = {**ada, "X-Eventory-Login": str(save_login(live, ada))}
    else:
        headers = {**ada, "X-Eventory-Authorization": f"Bearer {eventory.issue_token('anna@example.com')}"}
    assert live.get("/eventory/jobs/list", headers=headers).status_code == 200  # signs in if brokered
    eventory.reset()
    for target in ("/eventory/jobs/list", "/eventory/download?size=300000", "/eventory/jobs/list?page=2"):
        response = live.get(target, headers=headers)
        assert response.status_code == 200 and len(response.content) == int(response.headers["Content-Length"])
    assert len(eventory.requests) == 3 and len(set(eventory.peer_ports)) == 1


def test_gzip_answer_stays_gzip(live, ada, eventory):
    response = live.get("/eventory/gzip", headers={**ada, "Accept-Encoding": "gzip"}, stream=True)
    raw = response.raw.read(decode_content=False)
    assert response.headers["Content-Encoding"] == "gzip"
    assert raw == GZIP_BODY
    assert int(response.headers["Content-Length"]) == len(raw)


def test_logo_is_binary_and_complete(live, eventory):
    headers = account(live)
    login_id = save_login(live, headers)
    response = live.get("/eventory/logo", headers={**headers, "X-Eventory-Login": str(login_id)})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG") and len(response.content) == int(response.headers["Content-Length"])


def test_headers_crossing_are_allowlisted(live, ada, eventory):
    response = live.get(
        "/eventory/echo",
        headers={
            **ada,
            "Cookie": "session=browser-cookie",
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "hop",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "Accept-Language": "sv-SE",
            "X-Forwarded-For": "6.6.6.6",
        },
    )
    sent = response.json()["headers"]
    assert "authorization" not in sent  # the backend's own token stays here
    for name in ("cookie", "x-secret-hop", "keep-alive", "te", "proxy-authorization"):
        assert name not in sent, name
    assert sent["accept-language"] == "sv-SE"
    assert sent["host"] == urlsplit(eventory.url).netloc
    assert sent["x-forwarded-for"] == "127.0.0.1"  # the socket's address: 127.0.0.1 is not a trusted proxy
    assert sent["x-forwarded-proto"] == "http"
    for name in ("Set-Cookie", "X-Hop", "Keep-Alive", "X-Echo"):
        assert name not in response.headers, name


def test_headers_the_clients_connection_header_names_are_not_forwarded(live, ada, eventory):
    headers = {
        **ada,
        "Connection": "Accept-Language, cache-control",
        "Accept-Language": "sv",
        "Cache-Control": "no-cache",
    }
    sent = live.get("/eventory/echo", headers={**headers, "Accept": "application/json"}).json()["headers"]
    assert "accept-language" not in sent
    assert "cache-control" not in sent
    assert sent["accept"] == "application/json"


def test_forwarded_for_chain_is_kept_from_a_trusted_proxy(make_app, serve, eventory):
    live = serve(make_app(TRUSTED_PROXIES=["127.0.0.1"]))
    headers = account(live)
    sent = live.get("/eventory/echo", headers={**headers, "X-Forwarded-For": "203.0.113.9"}).json()["headers"]
    assert sent["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/eventory/redirect", "/eventory/jobs/list"),
        ("/eventory/redirect-relative", "/eventory/jobs/list"),
        ("/eventory/redirect-away", "https://elsewhere.example/x"),
    ],
)
def test_redirects_are_passed_back_not_followed(live, ada, eventory, target, expected):
    response = live.get(target, headers=ada, allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == expected
    assert [path for _method, path, _headers in eventory.requests] == [target.removeprefix("/eventory")]


@pytest.mark.parametrize(
    "target",
    [
        "/eventory/../auth/me",
        "/eventory/a/../../x",
        "/eventory/%2e%2e/x",
        "/eventory/%2E%2e/x",
        "/eventory/.%2e/x",
        "/eventory/a%2fb",
        "/eventory/a%2F..%2Fb",
        "/eventory//evil.example/x",
        "/eventory/a//b",
        "/eventory/a\\b",
        "/eventory/a%5cb",
        "/eventory/user@evil.example",
        "/eventory/a%40b",
        "/eventory/http:evil",
        "/eventory/a%3ab",
        "/eventory/a%0d%0aX-Injected:%201",
        "/eventory/a%00b",
        "/eventory/a%01b",
        "/eventory/a%7fb",
        "/eventory/%252e%252e/x",
        "/eventory/./x",
    ],
)
def test_paths_that_could_leave_the_base_are_400_before_any_call(live, ada, eventory, target):
    eventory.reset()
    assert raw_get(live, target, ada) == 400
    assert eventory.requests == []


@pytest.mark.parametrize("code", [*range(0x20), 0x7F])
def test_a_control_character_in_the_path_is_400_decoded_or_as_sent(code):
    """A check below the live ones above: a control character reaching `checked_path` by any way,
    in the decoded path or in the request line as sent, is refused."""
    char = chr(code)
    with pytest.raises(BadRequest):
        checked_path(f"a{char}b", "/eventory/ab", "/eventory/")
    with pytest.raises(BadRequest):
        checked_path("ab", f"/eventory/a{char}b", "/eventory/")


@pytest.mark.parametrize("char", [" ", "~", "\x80", "é"])
def test_printable_and_non_ascii_characters_in_the_path_pass_the_control_check(char):
    assert checked_path(f"a{char}b", f"/eventory/a{char}b", "/eventory/") == f"a{char}b"


def test_a_path_whose_route_prefix_was_percent_encoded_is_forwarded_whole(live, ada, eventory):
    status, body = raw_request(live, "/%65ventory/echo/eventory/x", ada)
    assert status == 200, body
    assert json.loads(body)["path"] == "/echo/eventory/x"


# --- when Eventory fails -------------------------------------------------------------------------


def test_eventory_down_is_502(make_app, serve):
    live = serve(make_app(EVENTORY_URL=f"http://127.0.0.1:{closed_port()}"))
    response = live.get("/eventory/jobs/list", headers=account(live))
    assert response.status_code == 502
    assert "reached" in response.json()["detail"]


def test_eventory_too_slow_is_504_and_others_are_served_meanwhile(make_app, serve, eventory):
    live = serve(make_app(PROXY_READ_TIMEOUT=1.0))
    headers = account(live)
    outcome = {}

    def slow():
        outcome["slow"] = live.get("/eventory/slow?seconds=3", headers=headers)

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.2)
    me = live.get("/auth/me", headers=headers)
    assert me.status_code == 200 and "slow" not in outcome
    thread.join()
    assert outcome["slow"].status_code == 504
    assert "in time" in outcome["slow"].json()["detail"]


def test_eventory_reset_mid_body_closes_the_connection(live, ada, eventory):
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        _ = live.get("/eventory/reset", headers=ada).content
    assert live.get("/auth/me", headers=ada).status_code == 200


def test_relay_holds_no_database_connection_while_waiting(make_app, serve, eventory):
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 1})
    live = serve(app)
    headers = account(live)
    login_id = save_login(live, headers)
    done = []
    slow = [
        threading.Thread(
            target=lambda: done.append(
                live.get("/eventory/slow?seconds=2", headers={**headers, "X-Eventory-Login": str(login_id)}).status_code
            )
        )
        for _ in range(3)
    ]
    for thread in slow:
        thread.start()
    time.sleep(0.3)
    assert live.get("/logins", headers=headers).status_code == 200
    assert live.get("/auth/me", headers=headers).status_code == 200
    for thread in slow:
        thread.join()
    assert done == [200, 200, 200]


# --- who may call it, and with which Eventory token ----------------------------------------------
# Without a backend token the relay is a 401 before any call: see test_tokens.py's bad-token table.


def test_preflight_is_answered_here_not_forwarded(live, eventory):
    eventory.reset()
    response = requests.options(
        live.url + "/eventory/jobs/list",
        headers={
            "Origin": "https://multisite.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization, content-type, x-eventory-login",
        },
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://multisite.example"
    assert "x-eventory-login" in response.headers["Access-Control-Allow-Headers"].lower()
    assert eventory.requests == []


def test_public_mode_forwards_the_clients_authorization(make_app, serve, eventory):
    live = serve(make_app(PROXY_PUBLIC=True))
    token = eventory.issue_token("anna@example.com")
    response = live.get("/eventory/jobs/list", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()[0]["organisation"] == "Org One"
    assert live.get("/eventory/jobs/list").status_code == 401  # Eventory's own 401, relayed


def test_public_mode_never_forwards_a_backend_token(make_app, serve, eventory):
    live = serve(make_app(PROXY_PUBLIC=True))
    backend = account(live)
    echoed = live.get("/eventory/echo", headers=backend).json()
    assert "authorization" not in echoed["headers"]
    eventory_token = eventory.issue_token("anna@example.com")
    echoed = live.get("/eventory/echo", headers={"Authorization": f"Bearer {eventory_token}"}).json()
    assert echoed["headers"]["authorization"] == f"Bearer {eventory_token}"


def test_public_mode_does_not_forward_an_expired_backend_token_either(make_app, serve, eventory):
    app = make_app(PROXY_PUBLIC=True)
    live = serve(app)
    with app.app_context():
        expired = create_access_token(identity="1", expires_delta=timedelta(seconds=-60))
    echoed = live.get("/eventory/echo", headers={"Authorization": f"Bearer {expired}"}).json()
    assert "authorization" not in echoed["headers"]


def test_client_held_eventory_token(live, ada, eventory):
    token = eventory.issue_token("anna@example.com")
    response = live.get("/eventory/jobs/list", headers={**ada, "X-Eventory-Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert eventory.requests[-1][2]["authorization"] == f"Bearer {token}"


def test_the_upstream_session_adds_nothing_of_its_own(app):
    """Upstream.send prepares each request itself instead of letting session.request merge the
    session's defaults in, which is only the same thing while the session has none: no default
    headers, auth, parameters or cookies, and nothing taken from the environment (proxies, .netrc)."""
    session = app.extensions["eventory_upstream"].session
    assert dict(session.headers) == {} and session.auth is None and session.params == {}
    assert len(session.cookies) == 0 and session.trust_env is False and session.proxies == {}


@pytest.mark.parametrize(
    "spelling",
    [
        "Bearer {t}",
        "Bearer\t{t}",
        "bearer  {t}",
        "{t}",
        "JWT {t}",
        "Token {t}",
        "Basic Zm9vOmJhcg==, Bearer {t}",
        "Bearer eventory-token, Bearer {t}",
        "Bearer {t}==",
        "Bearer  {t} ",
        "Token token={t}",
        "Bearer={t}",
        "Bearer_{t}",
        "Bearer x.{t}",
        "Bearer 1{t}",
        "Bearer {t_dots_encoded}",
        "Basic {t_in_basic}",
    ],
)
def test_the_public_relay_never_forwards_a_backend_token_in_any_spelling(make_app, serve, eventory, spelling):
    live = serve(make_app(PROXY_PUBLIC=True))
    token = account(live)["Authorization"].removeprefix("Bearer ")
    eventory.reset()
    basic = base64.b64encode(f"user:{token}".encode()).decode()
    authorization = spelling.format(t=token, t_dots_encoded=token.replace(".", "%2E"), t_in_basic=basic)
    response = live.get("/eventory/echo", headers={"Authorization": authorization})
    assert response.status_code == 200
    # The fake logs header names in lower case.
    forwarded = [headers.get("authorization") for _method, _path, headers in eventory.requests]
    assert forwarded == [None]
    assert token not in response.text


def test_the_public_relay_still_forwards_the_clients_own_eventory_token(make_app, serve, eventory):
    live = serve(make_app(PROXY_PUBLIC=True))
    eventory_token = eventory.issue_token(EVENTORY_LOGIN["username"])
    response = live.get("/eventory/user-info", headers={"Authorization": f"Bearer {eventory_token}"})
    assert response.status_code == 200 and response.json()["organizationName"] == "Org One"


@pytest.mark.parametrize("path", ["/eventory/echo", "/eventory/status/404", "/eventory/jobs/list"])
def test_relayed_answers_are_sandboxed_and_never_sniffed(live, eventory, path):
    headers = account(live)
    brokered = {**headers, "X-Eventory-Login": str(save_login(live, headers))}
    response = live.get(path, headers=brokered)
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
