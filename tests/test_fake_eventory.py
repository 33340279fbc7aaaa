"""Self-test for the fake Eventory server the relay, broker and fan-out tests and the bench run
against; on an instance of its own (`server`), not the shared one of the `eventory` fixture."""

import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from .fake_eventory import GZIP_BODY, GZIP_PLAIN, FakeEventory, big_json_chunks, download_sha256

USER = "anna@example.com"
PASSWORD = "eventory-pass-1"


@pytest.fixture(scope="module")
def server():
    with FakeEventory() as server:
        yield server


@pytest.fixture()
def session(server):
    server.reset()
    server.delay = 0
    server.login_delay = 0
    with requests.Session() as s:
        yield s


def _login(session, server, password=PASSWORD):
    return session.post(server.url + "/login-json", data={"username": USER, "password": password})


def test_login_success_and_failure(server, session):
    ok = _login(session, server)
    assert ok.status_code == 200
    body = ok.json()
    assert body["token_type"] == "bearer" and body["access_token"]

    bad = _login(session, server, password="wrong")
    assert bad.status_code == 401
    assert bad.json() == {"detail": "Incorrect username or password"}

    missing = session.post(server.url + "/login-json", data={"username": USER})
    assert missing.status_code == 422

    multipart = session.post(server.url + "/login-json", files={"username": (None, USER), "password": (None, PASSWORD)})
    assert multipart.status_code == 200

    assert server.login_count[USER] == 2
    assert server.login_attempts == 4


def test_user_info_auth_and_expiry(server, session):
    token = _login(session, server).json()["access_token"]
    resp = session.get(server.url + "/user-info", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    assert resp.json() == {
        "organizationName": "Org One",
        "firstName": "Anna",
        "lastName": "Andersson",
        "username": USER,
    }

    anon = session.get(server.url + "/user-info")
    assert anon.status_code == 401
    assert anon.json() == {"detail": "Could not validate credentials"}
    assert anon.headers["WWW-Authenticate"] == "Bearer"

    jobs = session.get(server.url + "/jobs/list", headers={"Authorization": f"Bearer {server.issue_token(USER)}"})
    assert [j["organisation"] for j in jobs.json()] == ["Org One"] * 3

    server.expire_all_tokens()
    expired = session.get(server.url + "/user-info", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401
    assert session.get(server.url + "/nope").status_code == 404


def test_echo_chunked_post(server, session):
    parts = [b"hello ", b"chunked ", b"world" * 1000]

    def gen():
        yield from parts

    resp = session.post(server.url + "/echo/a%20b/c?x=1&y=%2F", data=gen())
    assert resp.status_code == 200
    body = resp.json()
    assert body["method"] == "POST"
    assert body["path"] == "/echo/a%20b/c"
    assert body["query"] == "x=1&y=%2F"
    assert body["headers"]["transfer-encoding"] == "chunked"
    joined = b"".join(parts)
    assert body["body_sha256"] == hashlib.sha256(joined).hexdigest()
    assert body["body_length"] == len(joined)
    assert resp.headers["X-Echo"] == "yes"
    assert resp.headers["X-Hop"] == "should-be-dropped"
    assert server.requests[-1][0] == "POST"
    assert server.requests[-1][1] == "/echo/a%20b/c?x=1&y=%2F"


def test_echo_head(server, session):
    get = session.get(server.url + "/echo")
    head = session.head(server.url + "/echo")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["Content-Length"]) > 0
    assert head.headers["X-Echo"] == "yes"
    assert get.json()["method"] == "GET"
    # connection still usable after HEAD
    assert session.get(server.url + "/echo").status_code == 200


def test_download_hash(server, session):
    size = 1_000_000
    with session.get(server.url + f"/download?size={size}", stream=True) as resp:
        assert resp.status_code == 200
        assert resp.headers["Content-Length"] == str(size)
        h = hashlib.sha256()
        for chunk in resp.iter_content(65536):
            h.update(chunk)
    assert h.hexdigest() == download_sha256(size)


def test_gzip_raw_bytes(server, session):
    with session.get(server.url + "/gzip", stream=True) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        raw = resp.raw.read(decode_content=False)
    assert raw == GZIP_BODY
    assert session.get(server.url + "/gzip").content == GZIP_PLAIN


def test_reset_route_aborts(server, session):
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        with session.get(server.url + "/reset", stream=True) as resp:
            _ = resp.content
    # the server survives
    assert session.get(server.url + "/status/418").status_code == 418


def test_redirect_not_followed(server, session):
    resp = session.get(server.url + "/redirect", allow_redirects=False)
    assert resp.status_code == 302
    assert resp.headers["Location"] == server.url + "/jobs/list"
    assert resp.content == b""


def test_stop_is_fast_with_open_keepalive_connection():
    before = set(threading.enumerate())
    server = FakeEventory().start()
    with requests.Session() as s:
        assert s.get(server.url + "/echo").status_code == 200  # pooled, kept alive
        t0 = time.monotonic()
        server.stop()
        assert time.monotonic() - t0 < 1.0
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


@pytest.mark.parametrize("size", [2, 3, 4, 15, 1000, 200_003])
def test_big_json_is_exactly_size_bytes_of_json_that_serialises_back_the_same(server, session, size):
    token = server.issue_token(USER)
    resp = session.get(server.url + f"/big-json?size={size}", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200 and resp.headers["Content-Length"] == str(size)
    assert resp.content == b"".join(big_json_chunks(size)) and len(resp.content) == size
    assert json.dumps(resp.json(), separators=(",", ":")).encode() == resp.content or size == 3


def test_calls_counts_requests_per_path_and_delay_ms_answers_late(server, session):
    assert session.get(server.url + "/calls?path=/status/200").json() == {"calls": 0}
    started = time.monotonic()
    assert session.get(server.url + "/status/200?delay_ms=150").status_code == 200
    assert time.monotonic() - started >= 0.15
    assert session.get(server.url + "/calls?path=/status/200").json() == {"calls": 1}
    assert server.calls("/status/200") == 1


def test_any_user_signs_in_any_non_empty_pair():
    with FakeEventory(any_user=True, log_requests=False) as fake, requests.Session() as s:
        url = fake.url + "/login-json"
        token = s.post(url, data={"username": "who@example.com", "password": "x"}).json()["access_token"]
        info = s.get(fake.url + "/user-info", headers={"Authorization": f"Bearer {token}"}).json()
        assert info["username"] == "who@example.com"
        assert s.post(url, data={"username": "who@example.com", "password": ""}).status_code == 401
        assert fake.requests == [] and fake.calls("/user-info") == 1


def test_runs_as_a_process_that_announces_its_port():
    script = Path(__file__).with_name("fake_eventory.py")
    args = [sys.executable, str(script), "--port", "0", "--any-user", "--max-seconds", "30"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stdout.readline()
            assert line.startswith("PORT ")
            url = f"http://127.0.0.1:{int(line.split()[1])}"
            assert requests.post(url + "/login-json", data={"username": "a", "password": "b"}, timeout=5).ok
        finally:
            proc.terminate()
        assert proc.wait(timeout=10) == 0
