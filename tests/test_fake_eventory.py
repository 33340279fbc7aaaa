"""Self-test for the fake Eventory server used by the proxy tests."""

import hashlib
import threading
import time

import pytest
import requests

try:
    from tests.fake_eventory import GZIP_BODY, GZIP_PLAIN, FakeEventory, download_sha256
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    from fake_eventory import GZIP_BODY, GZIP_PLAIN, FakeEventory, download_sha256

USER = "anna@example.com"
PASSWORD = "eventory-pass-1"


@pytest.fixture(scope="module")
def fake():
    with FakeEventory() as server:
        yield server


@pytest.fixture()
def session(fake):
    fake.reset()
    fake.delay = 0
    fake.login_delay = 0
    with requests.Session() as s:
        yield s


def _login(session, fake, password=PASSWORD):
    return session.post(fake.url + "/login-json", data={"username": USER, "password": password})


def test_login_success_and_failure(fake, session):
    ok = _login(session, fake)
    assert ok.status_code == 200
    body = ok.json()
    assert body["token_type"] == "bearer" and body["access_token"]

    bad = _login(session, fake, password="wrong")
    assert bad.status_code == 401
    assert bad.json() == {"detail": "Incorrect username or password"}

    missing = session.post(fake.url + "/login-json", data={"username": USER})
    assert missing.status_code == 422

    multipart = session.post(fake.url + "/login-json", files={"username": (None, USER), "password": (None, PASSWORD)})
    assert multipart.status_code == 200

    assert fake.login_count[USER] == 2
    assert fake.login_attempts == 4


def test_user_info_auth_and_expiry(fake, session):
    token = _login(session, fake).json()["access_token"]
    resp = session.get(fake.url + "/user-info", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    assert resp.json() == {
        "organizationName": "Org One",
        "firstName": "Anna",
        "lastName": "Andersson",
        "username": USER,
    }

    anon = session.get(fake.url + "/user-info")
    assert anon.status_code == 401
    assert anon.json() == {"detail": "Could not validate credentials"}
    assert anon.headers["WWW-Authenticate"] == "Bearer"

    jobs = session.get(fake.url + "/jobs/list", headers={"Authorization": f"Bearer {fake.issue_token(USER)}"})
    assert [j["organisation"] for j in jobs.json()] == ["Org One"] * 3

    fake.expire_all_tokens()
    expired = session.get(fake.url + "/user-info", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401
    assert session.get(fake.url + "/nope").status_code == 404


def test_echo_chunked_post(fake, session):
    parts = [b"hello ", b"chunked ", b"world" * 1000]

    def gen():
        yield from parts

    resp = session.post(fake.url + "/echo/a%20b/c?x=1&y=%2F", data=gen())
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
    assert fake.requests[-1][0] == "POST"
    assert fake.requests[-1][1] == "/echo/a%20b/c?x=1&y=%2F"


def test_echo_head(fake, session):
    get = session.get(fake.url + "/echo")
    head = session.head(fake.url + "/echo")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["Content-Length"]) > 0
    assert head.headers["X-Echo"] == "yes"
    assert get.json()["method"] == "GET"
    # connection still usable after HEAD
    assert session.get(fake.url + "/echo").status_code == 200


def test_download_hash(fake, session):
    size = 1_000_000
    with session.get(fake.url + f"/download?size={size}", stream=True) as resp:
        assert resp.status_code == 200
        assert resp.headers["Content-Length"] == str(size)
        h = hashlib.sha256()
        for chunk in resp.iter_content(65536):
            h.update(chunk)
    assert h.hexdigest() == download_sha256(size)


def test_gzip_raw_bytes(fake, session):
    with session.get(fake.url + "/gzip", stream=True) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        raw = resp.raw.read(decode_content=False)
    assert raw == GZIP_BODY
    assert session.get(fake.url + "/gzip").content == GZIP_PLAIN


def test_reset_route_aborts(fake, session):
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        with session.get(fake.url + "/reset", stream=True) as resp:
            _ = resp.content
    # the server survives
    assert session.get(fake.url + "/status/418").status_code == 418


def test_redirect_not_followed(fake, session):
    resp = session.get(fake.url + "/redirect", allow_redirects=False)
    assert resp.status_code == 302
    assert resp.headers["Location"] == fake.url + "/jobs/list"
    assert resp.content == b""


def test_stop_is_fast_with_open_keepalive_connection():
    before = set(threading.enumerate())
    fake = FakeEventory().start()
    with requests.Session() as s:
        assert s.get(fake.url + "/echo").status_code == 200  # pooled, kept alive
        t0 = time.monotonic()
        fake.stop()
        assert time.monotonic() - t0 < 1.0
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []
