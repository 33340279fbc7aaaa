"""The application as a whole: configuration, secret key, error shape (bodies too large, unknown
routes, wrong methods, crashes), CORS, OpenAPI, serving, and answers that do not linger (no-store,
nosniff, no TRACE)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time

import pytest
import requests
from openapi_spec_validator import validate

from config import from_environ
from eventory_backend import create_app
from eventory_backend.settings import SEED_SECRET_KEY

from . import services
from .helpers import (
    ADA,
    EVENTORY_LOGIN,
    NEW_PASSWORD,
    ROOT,
    URLENCODED,
    account,
    ada_logins,
    app_with_a_crashing_route,
    assert_error,
    bear,
    bearer,
    form,
    log_in,
    raw,
    save_login,
    snapshot,
)

ALLOWED = "https://multisite.example"


PASSPHRASE = "a factory-made passphrase"


def test_environment_variables_configure_the_app(monkeypatch, tmp_path):
    monkeypatch.setenv("BACKEND_REGISTRATION_OPEN", "false")
    monkeypatch.setenv("BACKEND_PORT", "9001")
    monkeypatch.setenv("BACKEND_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("BACKEND_PASSWORD_MIN_LENGTH", "20")
    monkeypatch.setenv("BACKEND_DATABASE_URL", f"sqlite:///{(tmp_path / 'env.db').as_posix()}")
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")})
    assert app.config["REGISTRATION_OPEN"] is False
    assert app.config["PORT"] == 9001
    assert app.config["CORS_ORIGINS"] == ["https://a.example", "https://b.example"]
    assert (tmp_path / "env.db").exists()
    response = app.test_client().post("/auth/register", json={"username": "ada", "password": PASSPHRASE})
    assert response.status_code == 403
    assert "closed" in response.json["detail"]


def test_unreadable_setting_is_named_without_its_value():
    with pytest.raises(ValueError) as caught:
        from_environ({"BACKEND_PORT": "eighty", "BACKEND_SECRET_KEY": "fine"})
    assert "BACKEND_PORT" in str(caught.value) and "eighty" not in str(caught.value)


@pytest.mark.parametrize("key", [SEED_SECRET_KEY, "too-short-secret"])
def test_weak_secret_key_is_refused_outside_testing(tmp_path, key):
    with pytest.raises(RuntimeError) as caught:
        create_app({"SECRET_KEY": key, "INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert "secrets.token_urlsafe" in str(caught.value)
    assert key not in str(caught.value)


def test_weak_secret_key_is_allowed_in_testing(tmp_path):
    app = create_app({"SECRET_KEY": SEED_SECRET_KEY, "TESTING": True, "INSTANCE_PATH": str(tmp_path)})
    assert app.config["JWT_SECRET_KEY"] == SEED_SECRET_KEY


def test_generated_secret_key_is_kept_in_the_instance_folder(tmp_path):
    first = create_app({"INSTANCE_PATH": str(tmp_path)})
    second = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert len(first.config["SECRET_KEY"]) >= 32
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    if os.name == "posix":
        assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_crash_is_a_500_without_trace_or_secret(make_app):
    app = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError(f"secret {app.config['SECRET_KEY']}")

    response = app.test_client().get("/boom", headers={"Origin": ALLOWED})
    assert response.status_code == 500
    assert response.json == {"detail": "Something went wrong on the server."}
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


MIB = 1024 * 1024


def _multipart(fields: dict[str, str]) -> dict:
    """Encoded here: the test client spools a large multipart body to a file it never closes."""
    boundary = "----bad-inputs-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return raw(("".join(parts) + f"--{boundary}--\r\n").encode(), f"multipart/form-data; boundary={boundary}")


def _too_large_json(**fields) -> str:
    body = json.dumps({**fields, "label": ""})
    return body[:-2] + "x" * (MIB + 1 - len(body)) + '"}'


@pytest.mark.parametrize(
    ("method", "path", "make_kwargs"),
    [
        ("POST", "/logins", lambda: raw(_too_large_json(**EVENTORY_LOGIN))),
        ("PUT", "/logins/{id}", lambda: raw(_too_large_json(color="#abc"))),
        ("POST", "/auth/register", lambda: raw(_too_large_json(username="carol", password=ADA["password"]))),
        ("POST", "/auth/login", lambda: _multipart({"username": "ada", "password": "p" * (MIB + 1)})),
        ("POST", "/auth/login", lambda: form({"username": "ada", "password": "p" * (MIB + 1)}, URLENCODED)),
    ],
    ids=["post-logins", "put-login", "register", "login-multipart", "login-urlencoded"],
)
def test_body_over_one_mebibyte_is_413(app, client, ada, ada_login, method, path, make_kwargs):
    kwargs = make_kwargs()
    listed = ada_logins(client, ada)
    before = snapshot(app)

    response = client.open(path.format(id=ada_login["id"]), method=method, headers=ada, **kwargs)

    assert_error(response, 413)
    assert snapshot(app) == before
    assert ada_logins(client, ada) == listed


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", "/no/such/route"),
        ("POST", "/auth/nope"),
        ("GET", "/auth/me/"),
        ("GET", "/logins/{id}/nope"),
        ("DELETE", "/logins/{id}/session/extra"),
        ("GET", "/%00"),
    ],
)
def test_unknown_route_is_404_json(app, client, ada, ada_login, method, path):
    before = snapshot(app)

    response = client.open(path.format(id=ada_login["id"]), method=method, headers=ada)

    assert_error(response, 404)
    assert response.json == {"detail": "Not found."}
    assert snapshot(app) == before


# A method each route does answer, which its 405's Allow header must name.
ANSWERED = {"/logins": "GET", "/logins/{id}": "GET", "/auth/register": "POST", "/auth/login": "POST", "/auth/me": "GET"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/logins"),
        ("PUT", "/logins"),
        ("DELETE", "/logins"),
        ("PATCH", "/logins/{id}"),
        ("POST", "/logins/{id}"),
        ("GET", "/auth/register"),
        ("GET", "/auth/login"),
        ("PUT", "/auth/me"),
        ("PATCH", "/auth/me"),
        ("TRACE", "/auth/me"),
        ("TRACE", "/logins"),
        ("POST", "/auth/me"),
    ],
)
def test_wrong_method_is_405_json(app, client, ada, ada_login, method, path):
    listed = ada_logins(client, ada)
    before = snapshot(app)

    response = client.open(path.format(id=ada_login["id"]), method=method, headers=ada, json={"color": "#000"})

    assert_error(response, 405)
    assert ANSWERED[path] in {allowed.strip() for allowed in response.headers["Allow"].split(",")}
    assert snapshot(app) == before
    assert ada_logins(client, ada) == listed


def test_cors_preflight_from_an_allowed_origin(client):
    for method in ("POST", "PUT", "DELETE"):
        response = client.options(
            "/logins/1",
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert method in response.headers["Access-Control-Allow-Methods"]
        allowed = response.headers["Access-Control-Allow-Headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
        assert "Access-Control-Allow-Credentials" not in response.headers


def test_cors_errors_carry_the_origin_header(client):
    assert client.post("/auth/register", json={"username": "ada", "password": PASSPHRASE}).status_code == 201
    response = client.post(
        "/auth/login",
        data={"username": "ada", "password": "another factory passphrase"},
        content_type="multipart/form-data",
        headers={"Origin": ALLOWED},
    )
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.json["detail"]


def test_cors_disallowed_origin_gets_no_allow_origin(client):
    response = client.options(
        "/logins", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    assert (
        "Access-Control-Allow-Origin" not in client.get("/logins", headers={"Origin": "https://evil.example"}).headers
    )


def test_cors_wildcard_never_allows_credentials(make_app):
    client = make_app(CORS_ORIGINS=["*"]).test_client()
    response = client.get("/auth/me", headers={"Origin": "https://any.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_openapi_document_is_valid_and_complete(app, client):
    document = client.get("/openapi.json").json
    validate(document)
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/auth/login"
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item if method != "parameters"
    }
    for rule in app.url_map.iter_rules():
        if rule.endpoint in {"static", "swagger_ui_static"} or rule.endpoint.startswith(("api-docs", "account.")):
            continue  # pages for people (Swagger UI, the account console), not API operations
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)  # <id:login_id> -> {login_id}
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)
    login_body = document["paths"]["/auth/login"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/x-www-form-urlencoded", "application/json"} <= set(login_body)
    assert document["paths"]["/logins"]["get"]["security"]


def test_docs_are_served_without_a_cdn(client):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/docs/static/swagger-ui-bundle.js" in html and "https://" not in html
    script = client.get("/docs/static/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.data) > 100_000
    script.close()


def test_the_docs_page_runs_only_this_servers_scripts_and_its_own_set_up(client):
    page = client.get("/docs")
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    inline = re.findall(r"<script>(.*?)</script>", page.get_data(as_text=True), re.DOTALL)
    assert len(inline) == 1 and "SwaggerUIBundle(config)" in inline[0]
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    # Swagger UI's files (same origin) and exactly the set-up script as sent: an injected one would not run.
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert "unsafe" not in policy["script-src"] and "'unsafe-eval'" not in page.headers["Content-Security-Policy"]
    assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["frame-ancestors"] == "'none'" and page.headers["X-Frame-Options"] == "DENY"
    # Its files and the spec carry no page policy of their own.
    assert "Content-Security-Policy" not in client.get("/openapi.json").headers
    script = client.get("/docs/static/swagger-ui-bundle.js")
    assert "Content-Security-Policy" not in script.headers
    script.close()


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "wsgi.py"],
        # The waitress-serve command of docs/scaling-out.md, on a test port.
        [
            sys.executable,
            "-m",
            "waitress",
            "--listen=127.0.0.1:{port}",
            "--no-clear-untrusted-proxy-headers",
            "--ident=eventory-backend",
            "--threads=64",
            "--connection-limit=500",
            "--channel-timeout=30",
            "--cleanup-interval=15",
            "--outbuf-high-watermark=1048576",
            "--max-request-body-size=52428800",
            "wsgi:app",
        ],
    ],
)
def test_waitress_serves_the_app_and_creates_the_database(tmp_path, command):
    port = services.free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BACKEND_")},
        "PYTHON_DOTENV_DISABLED": "1",
        "BACKEND_INSTANCE_PATH": str(tmp_path / "instance"),
        "BACKEND_PORT": str(port),
    }
    command = [part.format(port=port) for part in command]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = requests.post(
                    f"http://127.0.0.1:{port}/auth/register",
                    json={"username": "ada", "password": PASSPHRASE},
                    timeout=5,
                )
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert response.status_code == 201
        assert response.headers["Server"] == "eventory-backend"
        assert (tmp_path / "instance" / "eventory_backend.db").exists()
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()


# --- answers that do not linger ------------------------------------------------------------------


def _auth_and_logins_requests(client, session, login_id):
    headers = bear(session)
    return {
        "register": client.post("/auth/register", json={"username": "carol", "password": ADA["password"]}),
        "register-422": client.post("/auth/register", json={}),
        "login": client.post("/auth/login", data=ADA),
        "login-401": client.post("/auth/login", data={"username": "ada", "password": "wrong wrong wrong"}),
        "me": client.get("/auth/me", headers=headers),
        "me-401": client.get("/auth/me"),
        "refresh": client.post("/auth/refresh", headers=bearer(session["refresh_token"])),
        "password-403": client.put(
            "/auth/password",
            json={"current_password": "wrong wrong wrong", "new_password": NEW_PASSWORD},
            headers=headers,
        ),
        "logins": client.get("/logins", headers=headers),
        "login-by-id": client.get(f"/logins/{login_id}", headers=headers),
        "logins-create": client.post("/logins", json=EVENTORY_LOGIN, headers=headers),
        "logins-edit": client.put(f"/logins/{login_id}", json={"color": "#000"}, headers=headers),
        "logins-404": client.get("/logins/999999", headers=headers),
        "logins-422": client.post("/logins", json={}, headers=headers),
        "logins-405": client.patch("/logins", headers=headers),
        "logout": client.post("/auth/logout", headers=headers),
    }


def test_auth_and_logins_answers_are_never_cached(client, ada_tokens):
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=bear(ada_tokens)).json["id"]

    responses = _auth_and_logins_requests(client, ada_tokens, login_id)

    assert {name: r.headers.get("Cache-Control") for name, r in responses.items()} == {
        name: "no-store" for name in responses
    }


def test_every_answer_forbids_content_sniffing(make_app, eventory):
    client = app_with_a_crashing_route(make_app).test_client()
    client.post("/auth/register", json=ADA)
    session = log_in(client)
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=bear(session)).json["id"]
    responses = {
        **_auth_and_logins_requests(client, session, login_id),
        "openapi": client.get("/openapi.json"),
        "docs": client.get("/docs"),
        "healthz": client.get("/healthz"),
        "404": client.get("/no/such/route"),
        "405": client.patch("/auth/me"),
        "413": client.post("/auth/register", data="x" * (1024 * 1024 + 1), content_type="application/json"),
        "500": client.get("/boom"),
        "preflight": client.options(
            "/logins", headers={"Origin": "https://multisite.example", "Access-Control-Request-Method": "POST"}
        ),
        "relayed": client.get("/eventory/echo", headers=bear(log_in(client))),
        "trace": client.open("/auth/me", method="TRACE"),
    }

    assert {name: r.headers.get("X-Content-Type-Options") for name, r in responses.items()} == {
        name: "nosniff" for name in responses
    }


TRACE_PATHS = [
    "/",
    "/auth/me",
    "/auth/login",
    "/logins",
    "/logins/{id}",
    "/eventory/echo",
    "/multisite/echo",
    "/openapi.json",
    "/docs",
]


def test_no_route_answers_trace(client, ada_tokens, eventory):
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=bear(ada_tokens)).json["id"]
    eventory.reset()
    headers = {**bear(ada_tokens), "X-Secret-Probe": "trace-me"}

    responses = {path: client.open(path.format(id=login_id), method="TRACE", headers=headers) for path in TRACE_PATHS}

    statuses = {path: response.status_code for path, response in responses.items()}
    assert all(status in (404, 405) for status in statuses.values()), statuses
    for response in responses.values():
        assert response.mimetype == "application/json"
        assert set(response.json) == {"detail"}
        text = json.dumps(response.json)
        assert "trace-me" not in text and ada_tokens["access_token"] not in text
    assert eventory.requests == []


DEEP = "[" * 5000 + "]" * 5000


DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in {"static", "swagger_ui_static"}:
            continue
        path = rule.rule.replace("<id:login_id>", "1").replace("<anypath:path>", "echo")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, path


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
def test_deeply_nested_json_is_a_400_on_every_route_never_a_500(make_app, serve, eventory, body):
    # Limits on, as in production: their keys read the body too.
    live = serve(make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://"))
    headers = account(live)
    save_login(live, headers)
    # Every route that reads a JSON body answers 400 with a clear detail, and changes nothing.
    for method, path in [
        ("POST", "/auth/login"),
        ("POST", "/auth/register"),
        ("POST", "/logins"),
        ("PUT", "/logins/1"),
    ]:
        response = live.request(method, path, data=body, headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == 400 and "JSON" in response.json()["detail"], (method, path)
    assert [login["label"] for login in live.get("/logins", headers=headers).json()] == [EVENTORY_LOGIN["label"]]
    # No route answers it with a 500, with or without a token (some routes end the token: last).
    for auth in ({}, headers):
        for method, path in _routes(live.app):
            response = live.request(method, path, data=body, headers={**auth, "Content-Type": "application/json"})
            assert response.status_code < 500, (method, path, response.text)
