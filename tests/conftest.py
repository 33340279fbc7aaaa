"""Fixtures: an app on its own SQLite file (or TEST_DATABASE_URL: PostgreSQL, MariaDB), users, tokens,
the fake Eventory, the app under a real waitress server, and a headless browser."""

from __future__ import annotations

import os
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import MetaData, create_engine

from eventory_backend import create_app
from eventory_backend.extensions import db
from eventory_backend.web.server import create_server

from .fake_eventory import FakeEventory
from .helpers import ADA, BOB, EVENTORY_LOGIN, bearer, log_in, register_and_login, start_instance

# Markers by rule, so a new test is sorted without a decorator. `browser`: it drives the run's
# Chromium. `server`: the app under real waitress in a thread (`serve`, `live`) or other processes
# (`python wsgi.py`, `waitress-serve`, tests/services.py's databases). `slow`: every browser test,
# every test that starts processes, the fuzz test (a `-m` on the command line replaces addopts'
# `not fuzz`), a parametrized table's cases past its first FAST_CASES, and the modules and tests
# below, which wait on purpose (timeouts, expiries, a held-back fake Eventory), migrate both ways
# or build volume. So the inner loop, `python -m pytest -m "not slow"`, runs nearly every test
# function once; `python -m pytest` still runs everything.
BROWSER_FIXTURES = {"chromium"}  # under `driver` and `console`
SERVER_FIXTURES = {"serve", "live", "two_instances_on_sqlite", "shared_services"}
PROCESS_FIXTURES = {"two_instances_on_sqlite", "shared_services"}
PROCESS_CALLS = {"start_instance", "Popen"}  # named in the test's own body
FAST_CASES = 1
SLOW_MODULES = {
    "test_audit_bounds.py",  # bounds at volume: many events, many refusals
    "test_cache_bounds.py",
    "test_shared_reads.py",  # each test holds Eventory's answer back for a while
}
SLOW_TESTS = {
    "test_auth.py::test_unknown_user_costs_about_as_long_as_a_wrong_password",
    "test_broker.py::test_a_call_that_read_the_old_credentials_cannot_plant_their_token",
    "test_broker.py::test_a_rejection_is_tried_again_after_the_back_off",
    "test_checks.py::test_a_hundred_checks_of_a_rejected_password_send_it_to_eventory_once",
    "test_cli.py::test_rotate_re_encrypts_every_login_so_the_old_key_can_go",
    "test_database.py::test_downgrade_and_upgrade_again",
    "test_factory.py::test_deeply_nested_json_is_a_400_on_every_route_never_a_500",
    "test_fanout.py::test_fan_out_runs_in_parallel_and_times_out_per_login",
    "test_health.py::test_a_sign_in_with_credentials_changed_meanwhile_does_not_mark_the_new_ones",
    "test_invitations.py::test_an_account_holds_a_bounded_number_of_unanswered_invitations",
    "test_library_workarounds.py::test_a_swept_memory_storage_starts_no_thread_of_its_own_and_still_expires",
    "test_logos.py::test_eventory_is_asked_again_once_the_memory_of_a_failure_has_passed",
    "test_observability.py::test_a_downloads_line_is_written_when_it_ends_and_times_all_of_it",
    "test_observability.py::test_relay_and_broker_metrics",
    "test_relay.py::test_eventory_too_slow_is_504_and_others_are_served_meanwhile",
    "test_relay.py::test_relay_holds_no_database_connection_while_waiting",
    "test_stale.py::test_fan_out_entries_say_they_are_stale_and_how_old",
    "test_stale.py::test_no_stale_answer_past_the_window_or_when_turned_off",
    "test_stale.py::test_while_eventory_is_down_the_last_good_answer_stands_in",
    "test_teams.py::test_audit_pages_are_complete_disjoint_and_newest_first",
    "test_teams.py::test_shares_read_only_and_events_survive_a_restart_and_migrations_go_both_ways",
    "test_tokens.py::test_a_remembered_token_is_refused_once_it_expires",
    "test_tokens.py::test_a_reuse_after_the_grace_window_still_ends_the_family",
}


def _names(code) -> set[str]:
    """The global and attribute names a function's code, and the code nested in it, refers to."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if hasattr(constant, "co_names"):
            names |= _names(constant)
    return names


def pytest_collection_modifyitems(items):
    cases = Counter()
    for item in items:
        fixtures = set(item.fixturenames)
        function = getattr(item, "function", None)
        starts_processes = bool(fixtures & PROCESS_FIXTURES) or (
            function is not None and bool(_names(function.__code__) & PROCESS_CALLS)
        )
        browser = bool(fixtures & BROWSER_FIXTURES)
        if browser:
            item.add_marker(pytest.mark.browser)
        if starts_processes or fixtures & SERVER_FIXTURES:
            item.add_marker(pytest.mark.server)
        test = f"{item.path.name}::{item.originalname}"
        cases[test] += 1
        if (
            browser
            or starts_processes
            or item.get_closest_marker("fuzz")
            or cases[test] > FAST_CASES
            or test in SLOW_TESTS
            or item.path.name in SLOW_MODULES
        ):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _no_developer_environment(monkeypatch):
    """Tests never read the developer's BACKEND_* variables or .env."""
    for name in list(os.environ):
        if name.startswith("BACKEND_"):
            monkeypatch.delenv(name)


def _reset_database(url: str) -> None:
    """An external test database (PostgreSQL, MariaDB) starts every test empty."""
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = MetaData()
        tables.reflect(connection)
        tables.drop_all(connection)  # in the order the foreign keys need
    engine.dispose()


@pytest.fixture
def database_url(tmp_path) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        _reset_database(url)
        return url
    return _sqlite(tmp_path / "test.db")


@pytest.fixture(scope="session")
def fake_eventory() -> Iterator[FakeEventory]:
    """The fake Eventory server, one for the whole run (make_app points EVENTORY_URL at it); tests
    ask `eventory`, which also clears its counters and delays."""
    with FakeEventory() as server:
        yield server


@pytest.fixture
def eventory(fake_eventory) -> Iterator[FakeEventory]:
    """The shared fake Eventory, with empty counters and no added delays: what the tests ask about."""
    fake_eventory.reset()
    fake_eventory.delay = fake_eventory.login_delay = 0.0
    fake_eventory.outage = fake_eventory.logo = None
    fake_eventory.release()
    yield fake_eventory
    fake_eventory.delay = fake_eventory.login_delay = 0.0
    fake_eventory.outage = fake_eventory.logo = None
    fake_eventory.release()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A SQLite file brought to the newest revision once per run. A test's SQLite database starts
    as a copy of it, and the app built on the copy skips the start's migration step, since the
    migrations are most of an app's start. Tests marked `empty_database`, and apps built with
    AUTO_MIGRATE=False, start from an empty file as a new deployment does; a second app on the
    same file (a restart) runs the start's migration step on the up-to-date database."""
    folder = tmp_path_factory.mktemp("migrated")
    path = folder / "migrated.db"
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(folder / "instance"), "SQLALCHEMY_DATABASE_URI": _sqlite(path)}
    )
    with app.app_context():
        db.session.remove()
        db.engine.dispose()  # the last connection closed: the whole database is in the file
    return path


def _sqlite(path: Path) -> str:
    return f"sqlite:///{path.as_posix()}"


@pytest.fixture
def make_app(request, tmp_path, database_url, fake_eventory):
    """Build an app with test defaults and extra settings."""
    apps = []

    def make(**settings):
        url = settings.get("SQLALCHEMY_DATABASE_URI", database_url)
        sqlite_file = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
        from_empty = request.node.get_closest_marker("empty_database") or settings.get("AUTO_MIGRATE") is False
        copied = sqlite_file is not None and not sqlite_file.exists() and not from_empty
        if copied:
            shutil.copyfile(request.getfixturevalue("migrated_sqlite"), sqlite_file)
        config = {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SQLALCHEMY_DATABASE_URI": database_url,
            "EVENTORY_URL": fake_eventory.url,
            "BCRYPT_LOG_ROUNDS": 4,
            "CORS_ORIGINS": ["https://multisite.example"],
            # Limits are tested on their own (test_limits.py); elsewhere they would only add noise.
            "RATELIMIT_ENABLED": False,
            "AUTO_MIGRATE": not copied,  # a copy of the migrated file is up to date already
        }
        config.update(settings)
        app = create_app(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ada_tokens(client) -> dict:
    """Ada registered and logged in once: her token pair (access_token, refresh_token, ...)."""
    assert client.post("/auth/register", json=ADA).status_code == 201
    return log_in(client, ADA)


@pytest.fixture
def ada(ada_tokens) -> dict:
    """Ada's bearer headers (the access token of `ada_tokens`); they work on `live` too, which serves `app`."""
    return bearer(ada_tokens["access_token"])


@pytest.fixture
def bob(client) -> dict:
    """Bob registered and logged in: his bearer headers."""
    return register_and_login(client, BOB)


@pytest.fixture
def ada_login(client, ada) -> dict:
    """Ada's one saved Eventory login, as the API returns it."""
    response = client.post("/logins", json=EVENTORY_LOGIN, headers=ada)
    assert response.status_code == 201, response.json
    return response.json


@dataclass
class LiveServer:
    url: str
    app: object

    def get(self, path, **kwargs):
        return requests.get(self.url + path, timeout=30, **kwargs)

    def post(self, path, **kwargs):
        return requests.post(self.url + path, timeout=30, **kwargs)

    def request(self, method, path, **kwargs):
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.url + path, **kwargs)  # noqa: S113 - timeout set just above


class WaitressThread:
    """The app under a real waitress server on 127.0.0.1; its loop runs, and is closed, in one thread."""

    def __init__(self, app, threads: int = 8):
        self.server = create_server(app, host="127.0.0.1", port=0, threads=threads)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from waitress import wasyncore

        while not self.stopping.is_set():
            wasyncore.loop(timeout=0.05, map=self.server._map, count=1)
        for channel in list(self.server._map.values()):
            channel.close()
        self.server.task_dispatcher.shutdown()

    def start(self) -> WaitressThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=15)


@pytest.fixture
def serve():
    """Start any app under waitress; stopped at the end of the test."""
    servers = []

    def start(app, threads: int = 8) -> LiveServer:
        server = WaitressThread(app, threads).start()
        servers.append(server)
        return LiveServer(server.url, app)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def live(app, serve) -> LiveServer:
    return serve(app)


@pytest.fixture
def two_instances_on_sqlite(tmp_path, eventory) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two `python wsgi.py` processes sharing one SQLite file and their keys, as one machine
    running one instance per core does (the PostgreSQL and Redis variant is test_instances.py)."""
    shared = {
        "BACKEND_DATABASE_URL": f"sqlite:///{(tmp_path / 'shared.db').as_posix()}",
        "BACKEND_SECRET_KEY": "a-shared-secret-key-of-at-least-32-bytes",
        "BACKEND_CREDENTIALS_KEYS": Fernet.generate_key().decode(),
        "BACKEND_EVENTORY_URL": eventory.url,
        "BACKEND_RATELIMIT_ENABLED": "false",
    }
    processes = []
    try:
        for name in ("first", "second"):  # one after the other: the first brings the database up to date
            processes.append(start_instance(tmp_path, name, shared))
        yield LiveServer(processes[0][1], None), LiveServer(processes[1][1], None)
    finally:
        for process, _url in processes:
            process.terminate()
            process.wait(timeout=15)


class Chromium:
    """The run's one headless Chromium (tests/browser.py), started when a test first needs it:
    starting one takes a second or two."""

    def __init__(self, folder_factory):
        self.folder_factory = folder_factory
        self.browser = None

    def clean(self):
        """The browser on a blank page, at its first window size, its logs read away; a new one if
        the last test left it unusable."""
        from selenium.common.exceptions import WebDriverException

        if self.browser is not None:
            try:
                self.browser.get("about:blank")
                self.browser.set_window_size(1280, 1600)
                self.browser.get_log("performance")
                self.browser.get_log("browser")
                return self.browser
            except WebDriverException:
                self.quit()
        from .browser import start_chromium  # here: the other tests run without selenium installed

        # Both paths are given, so Selenium Manager is never asked; SE_OFFLINE would stop it downloading anyway.
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SE_OFFLINE", "true")
            self.browser = start_chromium(self.folder_factory.mktemp("chromium"))
        return self.browser

    def quit(self) -> None:
        if self.browser is not None:
            browser, self.browser = self.browser, None
            browser.quit()


@pytest.fixture(scope="session")
def chromium(tmp_path_factory) -> Iterator[Chromium]:
    chromium = Chromium(tmp_path_factory)
    try:
        yield chromium
    finally:
        chromium.quit()


@pytest.fixture
def driver(chromium):
    """Headless Chromium; modules that use it carry `browser.needs_chromium`. One browser serves
    the run; each test serves the backend on a port of its own, so no page, storage or cache of an
    earlier test belongs to its origin."""
    return chromium.clean()


@pytest.fixture
def output():
    """Where the browser tests save their screenshots (git-ignored)."""
    from .browser import OUTPUT

    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT
