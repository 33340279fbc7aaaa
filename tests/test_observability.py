"""Health checks, request ids, the JSON access log and the Prometheus metrics."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from datetime import datetime, timedelta

import pytest
import requests
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from eventory_backend.observability import logging as observability_logging
from eventory_backend.observability import metrics as observability_metrics
from eventory_backend.observability.health import UNLIMITED_ENDPOINTS
from eventory_backend.observability.logging import JsonFormatter

from .helpers import (
    ADA,
    EVENTORY_LOGIN,
    account,
    app_whose_database_is_gone,
    app_with_a_crashing_route,
    closed_port,
    eventually,
    save_login,
    start_instance,
)

ACCESS_FIELDS = {
    "time",
    "level",
    "logger",
    "message",
    "request_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "user_id",
    "client",
}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


class CapturedLogs:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line]

    def access(self) -> list[dict]:
        return [line for line in self.lines() if line["logger"] == "eventory_backend.access"]

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()


@pytest.fixture
def logs():
    """Everything the package logs (access log included), as the JSON lines the app writes."""
    observability_logging.configure_logging()  # the app's own handlers first, as create_app leaves them
    captured = CapturedLogs()
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger("eventory_backend.access"), logging.getLogger("eventory_backend")]
    for logger in loggers:
        logger.addHandler(handler)
    yield captured
    for logger in loggers:
        logger.removeHandler(handler)


def samples(metrics_text: str) -> dict[tuple, float]:
    """{(sample name, sorted label pairs): value} from a Prometheus text page."""
    found = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(metrics_text: str, name: str, **labels) -> float:
    return samples(metrics_text).get((name, tuple(sorted(labels.items()))), 0.0)


def tokens_seen_by(eventory) -> list[str]:
    return [headers["authorization"].split()[1] for _m, _p, headers in eventory.requests if "authorization" in headers]


# ---- health ---------------------------------------------------------------------------------


def test_healthz_answers_without_a_token(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_answers_when_the_database_does(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready"}


def test_readyz_is_503_when_the_database_is_unreachable_and_healthz_stays_200(make_app, tmp_path, logs):
    client = app_whose_database_is_gone(make_app, tmp_path).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json == {"detail": "The database is not reachable."}
    assert int(response.headers["Retry-After"]) > 0
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])
    warnings = [line for line in logs.lines() if line["level"] == "WARNING"]
    assert warnings and warnings[0]["request_id"] == response.headers["X-Request-ID"]
    assert client.get("/healthz").status_code == 200  # liveness does no I/O


def test_health_checks_are_documented_and_need_no_token(client):
    document = client.get("/openapi.json").json
    validate(document)
    healthz = document["paths"]["/healthz"]["get"]
    readyz = document["paths"]["/readyz"]["get"]
    assert "200" in healthz["responses"]
    assert {"200", "503"} <= set(readyz["responses"])
    assert "Retry-After" in readyz["responses"]["503"]["headers"]
    assert "security" not in healthz and "security" not in readyz


def test_unlimited_endpoints_are_the_health_and_metrics_routes(make_app):
    app = make_app(METRICS=True)
    by_path = {rule.rule: rule.endpoint for rule in app.url_map.iter_rules()}
    assert {by_path["/healthz"], by_path["/readyz"], by_path["/metrics"]} == set(UNLIMITED_ENDPOINTS)


# ---- request ids ----------------------------------------------------------------------------


@pytest.mark.parametrize("sent", ["abc", "A.b_c-1", "x" * 64, "0f6e1c9a-7f5d-4b41-9c1e-2b7a4d8e9f00"])
def test_clients_request_id_is_echoed_and_logged(client, logs, sent):
    response = client.get("/healthz", headers={"X-Request-ID": sent})
    assert response.headers["X-Request-ID"] == sent
    assert [line["request_id"] for line in logs.access()] == [sent]


def test_request_id_is_generated_when_absent(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(first) and GENERATED_ID.fullmatch(second)
    assert first != second


@pytest.mark.parametrize(
    "sent",
    [
        "x" * 10_000,
        "x" * 65,
        "abc\ndef",
        "abc\r\nSet-Cookie: a=b",
        "a b",
        "\u00e5\u00e4\u00f6",
        "",
        "abc;def",
        "a/b",
        "id\x00",
    ],
)
def test_unusable_request_id_is_replaced(client, logs, sent):
    response = client.get("/healthz", environ_overrides={"HTTP_X_REQUEST_ID": sent})
    returned = response.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(returned)
    assert [line["request_id"] for line in logs.access()] == [returned]
    assert len(logs.text.splitlines()) == 1


def test_oversized_request_id_is_replaced_under_waitress(live, logs):
    response = live.get("/healthz", headers={"X-Request-ID": "y" * 10_000})
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])
    assert "y" * 65 not in logs.text


@pytest.mark.parametrize(
    "method, path, kwargs, status",
    [
        ("GET", "/no/such/route", {}, 404),
        ("PATCH", "/auth/me", {}, 405),
        ("GET", "/auth/me", {}, 401),
        ("GET", "/auth/me", {"headers": {"Authorization": "Bearer not-a-token"}}, 401),
        ("POST", "/auth/register", {"json": {"username": "x"}}, 422),
        ("POST", "/auth/register", {"data": "{", "content_type": "application/json"}, 400),
        ("POST", "/auth/register", {"data": b"x" * (2 * 1024 * 1024), "content_type": "application/json"}, 413),
        ("GET", "/boom", {}, 500),
        ("GET", "/openapi.json", {}, 200),
        ("GET", "/docs", {}, 200),
        (
            "OPTIONS",
            "/logins",
            {"headers": {"Origin": "https://multisite.example", "Access-Control-Request-Method": "GET"}},
            200,
        ),
    ],
)
def test_every_response_carries_the_request_id_and_is_logged(make_app, logs, method, path, kwargs, status):
    client = app_with_a_crashing_route(make_app).test_client()
    headers = {**kwargs.pop("headers", {}), "X-Request-ID": "trace-42"}
    response = client.open(path, method=method, headers=headers, **kwargs)
    assert response.status_code == status
    assert response.headers["X-Request-ID"] == "trace-42"
    assert [(line["request_id"], line["status"]) for line in logs.access()] == [("trace-42", status)]


def test_crash_that_propagates_is_still_logged_once_as_500(app, logs):
    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        app.test_client().get("/boom")
    assert [(line["path"], line["status"]) for line in logs.access()] == [("/boom", 500)]


# ---- the access log -------------------------------------------------------------------------


def test_one_json_line_per_request_with_its_fields(client, ada, logs):
    me = client.get("/auth/me", headers=ada).json
    logs.clear()
    response = client.get("/auth/me?password=query-secret", headers={**ada, "X-Request-ID": "req-1"})
    assert response.status_code == 200
    (line,) = logs.access()
    assert set(line) == ACCESS_FIELDS
    assert line["request_id"] == "req-1"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/auth/me", 200)
    assert line["user_id"] == me["id"]
    assert line["client"] == "127.0.0.1"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    logged_at = datetime.fromisoformat(line["time"])
    assert logged_at.utcoffset() == timedelta(0)
    assert "query-secret" not in logs.text

    for _ in range(3):
        client.get("/logins", headers=ada)
    assert len(logs.access()) == 4


def test_user_id_is_only_logged_for_a_verified_token(client, ada, logs):
    client.get("/healthz", headers=ada)  # a token sent but never checked
    client.get("/auth/me", headers={"Authorization": "Bearer not.a.token"})
    client.post("/auth/login", data=ADA)
    client.get("/logins", headers=ada)
    assert [line["user_id"] is None for line in logs.access()] == [True, True, True, False]


def test_client_address_comes_from_a_trusted_proxy_only(make_app, logs):
    client = make_app(TRUSTED_PROXIES=["127.0.0.1"]).test_client()
    client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"})
    other = make_app().test_client()
    other.get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"})
    assert [line["client"] for line in logs.access()] == ["203.0.113.9", "127.0.0.1"]


def test_logged_path_is_escaped_and_capped(client, logs):
    client.get("/no/%1B%5B2Jred%0Aline%00end")
    client.get("/" + "a" * 5000)
    escaped, long = logs.access()
    assert escaped["path"] == "/no/\\x1b[2Jred\\nline\\x00end"
    assert escaped["path"].isprintable()
    assert len(long["path"]) == 512
    assert len(logs.text.splitlines()) == 2
    assert "\x1b" not in logs.text


def only_access_line(logs) -> dict:
    lines = logs.access()
    assert len(lines) == 1, lines
    return lines[0]


def test_streamed_relay_is_logged_with_its_status(live, eventory, logs):
    headers = account(live)
    logs.clear()
    response = live.get("/eventory/download?size=1048576", headers={**headers, "X-Request-ID": "stream-1"}, stream=True)
    assert len(response.content) == 1048576
    assert response.headers["X-Request-ID"] == "stream-1"
    line = eventually(lambda: only_access_line(logs))  # written just after the last byte went out
    assert (line["request_id"], line["path"], line["status"]) == ("stream-1", "/eventory/download", 200)
    assert line["user_id"] is not None


def test_a_downloads_line_is_written_when_it_ends_and_times_all_of_it(live, eventory, logs):
    # Far more than the socket buffers and waitress's own hold: the server waits for the reader.
    size = 32 * 1024 * 1024
    headers = account(live)
    logs.clear()
    with live.get(f"/eventory/download?size={size}", headers=headers, stream=True) as response:
        chunks = response.iter_content(64 * 1024)
        received = len(next(chunks))
        time.sleep(0.6)  # a slow reader
        assert logs.access() == []  # the body is still on its way: no line yet
        received += sum(len(chunk) for chunk in chunks)
    assert received == size
    line = eventually(lambda: only_access_line(logs))
    assert (line["path"], line["status"]) == ("/eventory/download", 200)
    assert line["duration_ms"] >= 600  # the whole download, not only until its headers went out


def test_a_download_the_client_abandons_is_logged_once(live, eventory, logs):
    headers = account(live)
    logs.clear()
    with live.get("/eventory/download?size=33554432", headers=headers, stream=True) as response:
        assert len(next(response.iter_content(64 * 1024))) > 0
    # The client hung up after its first chunk: the server gives up on the rest and logs the answer it began.
    line = eventually(lambda: only_access_line(logs), seconds=15)
    assert (line["path"], line["status"]) == ("/eventory/download", 200)
    assert len(logs.access()) == 1


def test_relayed_answers_without_a_body_are_logged_once(live, eventory, logs):
    # HEAD, 204 and 304: Werkzeug sends no body, but still closes the answer the line waits for.
    headers = account(live)
    for method, path, status in (
        ("HEAD", "/eventory/download", 200),
        ("GET", "/eventory/status/304", 304),
        ("GET", "/eventory/status/204", 204),
    ):
        logs.clear()
        assert live.request(method, path, headers=headers).status_code == status
        line = eventually(lambda: only_access_line(logs))
        assert (line["method"], line["path"], line["status"]) == (method, path, status)


def test_relay_errors_carry_the_request_id(make_app, serve, logs):
    live = serve(make_app(EVENTORY_URL=f"http://127.0.0.1:{closed_port()}"))
    headers = account(live)
    response = live.get("/eventory/jobs/list", headers={**headers, "X-Request-ID": "down-1"})
    assert response.status_code == 502
    assert response.headers["X-Request-ID"] == "down-1"
    proxy_warnings = [line for line in logs.lines() if line["logger"] == "eventory_backend.proxy"]
    assert proxy_warnings and proxy_warnings[0]["request_id"] == "down-1"


def test_logs_are_json_lines_on_stderr_with_one_handler_per_process(make_app, capsys):
    access = logging.getLogger("eventory_backend.access")
    package = logging.getLogger("eventory_backend")
    for _ in range(3):
        app = make_app(EVENTORY_URL=f"http://127.0.0.1:{closed_port()}")
    # pytest adds its own capture handlers; the app's are the JSON ones.
    assert [type(h.formatter) for h in access.handlers + package.handlers].count(
        observability_logging.JsonFormatter
    ) == 2
    assert access.propagate is False  # a root handler (waitress's basicConfig) must not print it again
    capsys.readouterr()

    client = app.test_client()
    client.post("/auth/register", json=ADA)
    token = client.post("/auth/login", data=ADA).json["access_token"]
    client.get("/eventory/jobs/list", headers={"Authorization": f"Bearer {token}"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    assert [line["path"] for line in lines if line["logger"] == "eventory_backend.access"] == [
        "/auth/register",
        "/auth/login",
        "/eventory/jobs/list",
    ]
    assert any(line["logger"] == "eventory_backend.proxy" and line["level"] == "WARNING" for line in lines)


def test_under_python_wsgi_py_every_log_line_is_json_and_written_once(tmp_path):
    # Eventory is a closed port: a warning on every relayed call.
    environment = {"BACKEND_EVENTORY_URL": f"http://127.0.0.1:{closed_port()}"}
    process, base = start_instance(tmp_path, "backend", environment)
    try:
        requests.post(f"{base}/auth/register", json=ADA, timeout=5)
        token = requests.post(f"{base}/auth/login", data=ADA, timeout=5).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "X-Eventory-Authorization": "Bearer some-eventory-token"}
        assert requests.get(f"{base}/eventory/jobs/list", headers=headers, timeout=10).status_code == 502
    finally:
        process.terminate()
        process.wait(timeout=10)
    log = (tmp_path / "backend.log").read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]  # all JSON
    warnings = [line for line in lines if line["logger"] == "eventory_backend.proxy"]
    assert len(warnings) == 1, lines
    assert warnings[0]["message"].startswith("eventory unreachable")
    assert [line["path"] for line in lines if line["logger"] == "eventory_backend.access"] == [
        "/openapi.json",
        "/auth/register",
        "/auth/login",
        "/eventory/jobs/list",
    ]


def test_log_level_setting(make_app, logs):
    try:
        client = make_app(LOG_LEVEL="warning").test_client()
        client.get("/healthz")
        assert logs.access() == []
    finally:
        observability_logging.configure_logging("INFO")
    with pytest.raises(ValueError, match="BACKEND_LOG_LEVEL"):
        make_app(LOG_LEVEL="chatty")


def test_no_secret_reaches_the_logs(make_app, serve, eventory, logs, caplog):
    caplog.set_level(logging.DEBUG)
    live = serve(make_app(METRICS=True))
    secrets = [ADA["password"], EVENTORY_LOGIN["password"]]

    live.post("/auth/register", json=ADA)
    live.post("/auth/login", data={"username": "ada", "password": "wrong guess of a passphrase"})
    secrets.append("wrong guess of a passphrase")
    pair = live.post("/auth/login", data=ADA).json()
    refreshed = live.post("/auth/refresh", headers={"Authorization": f"Bearer {pair['refresh_token']}"}).json()
    secrets += [pair["access_token"], pair["refresh_token"], refreshed["access_token"], refreshed["refresh_token"]]
    headers = {"Authorization": f"Bearer {refreshed['access_token']}"}

    good = save_login(live, headers)
    rejected = save_login(live, headers, label="Other", password="rejected-eventory-pass")
    secrets.append("rejected-eventory-pass")
    edited = live.request("PUT", f"/logins/{rejected}", json={"password": "edited-eventory-pass"}, headers=headers)
    assert edited.status_code == 200
    secrets.append("edited-eventory-pass")
    live.get("/logins?access_token=query-string-secret", headers=headers)
    secrets.append("query-string-secret")
    session = live.post(f"/logins/{good}/session", headers=headers).json()
    secrets.append(session["access_token"])
    live.get("/eventory/jobs/list", headers={**headers, "X-Eventory-Login": str(good)})
    live.get("/eventory/jobs/list", headers={**headers, "X-Eventory-Login": str(rejected)})
    live.get(
        "/eventory/user-info", headers={**headers, "X-Eventory-Authorization": f"Bearer {session['access_token']}"}
    )
    live.get("/eventory/echo?token=relayed-query-secret", headers=headers)
    secrets.append("relayed-query-secret")
    assert live.get("/multisite/jobs/list", headers=headers).status_code == 200
    assert live.get("/metrics").status_code == 200

    new_password = "a completely new passphrase for ada"
    changed = live.request(
        "PUT",
        "/auth/password",
        json={"current_password": ADA["password"], "new_password": new_password},
        headers=headers,
    ).json()
    secrets += [new_password, changed["access_token"], changed["refresh_token"]]
    headers = {"Authorization": f"Bearer {changed['access_token']}"}
    assert live.post("/auth/logout", headers=headers).status_code == 204
    again = live.post("/auth/login", data={"username": "ada", "password": new_password}).json()
    secrets.append(again["access_token"])
    deleted = live.request(
        "DELETE",
        "/auth/me",
        json={"password": new_password},
        headers={"Authorization": f"Bearer {again['access_token']}"},
    )
    assert deleted.status_code == 204

    secrets += tokens_seen_by(eventory)
    assert len(logs.access()) == 19  # one line per request
    assert any(line["logger"] == "eventory_backend.proxy" for line in logs.lines())  # warnings were captured too
    # urllib3's DEBUG lines (the test's own client, and the relay's pool: off unless a deployment turns
    # third-party DEBUG logging on) show URLs with their query strings; everything else must not.
    in_urls = {"query-string-secret", "relayed-query-secret"}
    others = "\n".join(
        caplog.handler.format(record) for record in caplog.records if not record.name.startswith("urllib3")
    )
    for secret in secrets:
        assert secret not in logs.text
        assert secret not in others
        if secret not in in_urls:
            assert secret not in caplog.text  # urllib3's lines included


# ---- metrics --------------------------------------------------------------------------------


def test_metrics_are_off_by_default(client):
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.json == {"detail": "Not found."}
    assert "/metrics" not in client.get("/openapi.json").json["paths"]


def test_metrics_count_requests_by_route_template_and_status(make_app):
    client = make_app(METRICS=True).test_client()
    client.post("/auth/register", json={"username": "zelda-metrics", "password": "a long enough passphrase"})
    token = client.post("/auth/login", data={"username": "zelda-metrics", "password": "a long enough passphrase"})
    headers = {"Authorization": f"Bearer {token.json['access_token']}"}
    login_id = client.post("/logins", json=EVENTORY_LOGIN, headers=headers).json["id"]
    client.get(f"/logins/{login_id}", headers=headers)
    client.get(f"/logins/{login_id}", headers=headers)
    client.get("/logins/987654", headers=headers)
    client.get("/no/such/route")

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.get_data(as_text=True)
    requests_total = "eventory_backend_requests_total"
    assert value(text, requests_total, route="/logins/<id:login_id>", method="GET", status="200") == 2
    assert value(text, requests_total, route="/logins/<id:login_id>", method="GET", status="404") == 1
    assert value(text, requests_total, route="/auth/register", method="POST", status="201") == 1
    assert value(text, requests_total, route="unmatched", method="GET", status="404") == 1
    histogram = "eventory_backend_request_duration_seconds_count"
    assert value(text, histogram, route="/logins/<id:login_id>", method="GET", status="200") == 2
    assert 'le="+Inf"' in text

    assert f"/logins/{login_id}" not in text and "/logins/987654" not in text and "/no/such" not in text
    for private in (
        "zelda-metrics",
        EVENTORY_LOGIN["username"],
        EVENTORY_LOGIN["password"],
        "a long enough passphrase",
        token.json["access_token"],
    ):
        assert private not in text


def test_metrics_route_is_documented_when_on(make_app):
    document = make_app(METRICS=True).test_client().get("/openapi.json").json
    validate(document)
    assert "text/plain" in document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]


def test_each_app_has_its_own_registry(make_app):
    first = make_app(METRICS=True).test_client()
    second = make_app(METRICS=True).test_client()
    first.get("/healthz")
    first.get("/healthz")
    second.get("/healthz")
    route = {"route": "/healthz", "method": "GET", "status": "200"}
    assert value(first.get("/metrics").get_data(as_text=True), "eventory_backend_requests_total", **route) == 2
    assert value(second.get("/metrics").get_data(as_text=True), "eventory_backend_requests_total", **route) == 1


def test_relay_and_broker_metrics(make_app, serve, eventory):
    live = serve(make_app(METRICS=True, PROXY_READ_TIMEOUT=0.5))
    headers = account(live)
    good = save_login(live, headers)
    rejected = save_login(live, headers, label="Other", password="rejected-eventory-pass")

    assert live.get("/eventory/jobs/list", headers={**headers, "X-Eventory-Login": str(good)}).status_code == 200
    assert live.get("/eventory/jobs/list", headers={**headers, "X-Eventory-Login": str(good)}).status_code == 200
    assert live.get("/eventory/jobs/list", headers={**headers, "X-Eventory-Login": str(rejected)}).status_code == 502
    assert live.get("/eventory/slow?seconds=2", headers=headers).status_code == 504
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        _ = live.get("/eventory/reset", headers=headers).content
    route = {"route": "/eventory/<anypath:path>", "method": "GET"}

    def metrics_once_every_answer_has_gone_out() -> str:
        # A streamed answer is counted when the server has sent its body, just after the client has it.
        text = live.get("/metrics").text
        assert value(text, "eventory_backend_requests_total", status="200", **route) == 3  # the reset one began as 200
        return text

    text = eventually(metrics_once_every_answer_has_gone_out)
    assert value(text, "eventory_backend_sign_ins_total", outcome="ok") == 1
    assert value(text, "eventory_backend_sign_ins_total", outcome="rejected") == 1
    assert value(text, "eventory_backend_sign_ins_total", outcome="failed") == 0
    assert value(text, "eventory_backend_token_cache_misses_total") == 2
    assert value(text, "eventory_backend_token_cache_hits_total") == 1
    assert value(text, "eventory_backend_upstream_errors_total", kind="timeout") == 1
    assert value(text, "eventory_backend_upstream_errors_total", kind="broken_body") == 1
    assert value(text, "eventory_backend_upstream_errors_total", kind="unreachable") == 0
    upstream_calls = value(text, "eventory_backend_upstream_duration_seconds_count")
    assert upstream_calls == 6  # 2 sign-ins, 2 brokered calls, the slow one and the reset one
    assert value(text, "eventory_backend_requests_total", status="504", **route) == 1

    # Fan-out workers run without an app context: their calls count all the same.
    results = live.get("/multisite/jobs/list", headers=headers).json()["results"]
    assert [entry["status"] for entry in results] == [200, None]
    text = live.get("/metrics").text
    # The rejected login is not tried again (its rejection is remembered): one call, not two.
    assert value(text, "eventory_backend_upstream_duration_seconds_count") == upstream_calls + 1
    assert value(text, "eventory_backend_token_cache_hits_total") == 2
    assert value(text, "eventory_backend_sign_ins_total", outcome="rejected") == 1
    assert "jobs/list" not in text and EVENTORY_LOGIN["username"] not in text


def test_unreachable_eventory_is_counted(make_app, serve, eventory):
    live = serve(make_app(METRICS=True, EVENTORY_URL=f"http://127.0.0.1:{closed_port()}"))
    headers = account(live)
    login_id = save_login(live, headers)
    assert live.get("/eventory/jobs/list", headers=headers).status_code == 502
    assert live.get("/eventory/jobs/list", headers={**headers, "X-Eventory-Login": str(login_id)}).status_code == 502
    text = live.get("/metrics").text
    assert value(text, "eventory_backend_upstream_errors_total", kind="unreachable") == 2
    assert value(text, "eventory_backend_sign_ins_total", outcome="failed") == 1


def test_metrics_helpers_are_no_ops_without_an_app():
    observability_metrics.observe_upstream(0.1)
    observability_metrics.count_upstream_error("timeout")
    observability_metrics.count_sign_in("ok")
    observability_metrics.count_token_cache(True)
