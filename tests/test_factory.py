"""The application as a whole: configuration, secret key, error shape, CORS, OpenAPI, serving."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests
from openapi_spec_validator import validate

from config import from_environ
from eventory_backend import SEED_SECRET_KEY, create_app

from .helpers import ROOT

ALLOWED = "https://multisite.example"


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
    response = app.test_client().post("/auth/register", json={"username": "ada", "password": "x" * 25})
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


def test_unknown_route_and_wrong_method_are_json(client):
    missing = client.get("/no/such/route")
    assert missing.status_code == 404 and missing.json == {"detail": "Not found."}
    wrong = client.patch("/auth/me")
    assert wrong.status_code == 405 and isinstance(wrong.json["detail"], str)
    assert "GET" in wrong.headers["Allow"]


def test_body_over_the_limit_is_413(client, ada):
    body = b'{"label": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post("/logins", data=body, content_type="application/json", headers=ada)
    assert response.status_code == 413
    assert isinstance(response.json["detail"], str)
    assert client.get("/logins", headers=ada).json == []


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
    client.post("/auth/register", json={"username": "ada", "password": "x" * 20})
    response = client.post(
        "/auth/login",
        data={"username": "ada", "password": "y" * 20},
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
        if rule.endpoint in {"static", "swagger_ui_static"} or rule.endpoint.startswith("api-docs"):
            continue
        path = rule.rule.replace("<id:login_id>", "{login_id}").replace("<anypath:path>", "{path}")
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "command",
    [[sys.executable, "wsgi.py"], [sys.executable, "-m", "waitress", "--listen=127.0.0.1:{port}", "wsgi:app"]],
)
def test_waitress_serves_the_app_and_creates_the_database(tmp_path, command):
    port = _free_port()
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
                    f"http://127.0.0.1:{port}/auth/register", json={"username": "ada", "password": "x" * 20}, timeout=5
                )
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert response.status_code == 201
        assert response.headers["Server"] == "eventory-backend" if command[1] == "wsgi.py" else True
        assert (tmp_path / "instance" / "eventory_backend.db").exists()
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()
