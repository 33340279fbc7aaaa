"""The caches a client can fill are bounded by what they hold: the stale answers count key
(the client's path and query), headers and body against BACKEND_STALE_CACHE_BYTES and let go of
answers past BACKEND_STALE_IF_ERROR unread; the token cache's tokens, remembered rejections and
sign-in locks are each bounded."""

from __future__ import annotations

import gc
import os
import time
import tracemalloc

import pytest
from cryptography.fernet import Fernet

from eventory_backend.logins.crypto import CredentialCipher
from eventory_backend.proxy.broker import Credentials, TokenCache
from eventory_backend.proxy.errors import EventoryRejectedLogin, EventoryUnavailable
from eventory_backend.proxy.stale import StaleAnswers
from eventory_backend.proxy.upstream import Upstream

from .helpers import EVENTORY_LOGIN, account, at_once, closed_port, save_login

MIB = 1024 * 1024
QUERY = 32 * 1024
HEADERS = [("Content-Type", "application/json"), ("Content-Length", "120"), ("Server", "Eventory")]

# --- the stale answers -----------------------------------------------------------------------------


def _retained_after_keeping(cache: StaleAnswers, count: int) -> int:
    """Bytes still allocated after `count` answers, each with a distinct 32 KiB query in its key,
    were offered to `cache`: their keys, headers and bodies are made inside the measured section
    and then referenced by the cache alone."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(count):
            key = (os.urandom(32), "jobs/list", f"q={number:06d}&pad=" + "x" * QUERY, ("application/json", "", ""))
            headers = [(name, f"{value} {number}") for name, value in HEADERS]
            cache.keep(key, 1, headers, [os.urandom(120)])
            del key, headers
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_the_stale_cache_holds_at_most_its_cap_whatever_the_query_strings():
    cache = StaleAnswers(max_age=300, max_bytes=MIB)
    retained = _retained_after_keeping(cache, 1_000)
    off = _retained_after_keeping(StaleAnswers(max_age=0, max_bytes=MIB), 1_000)
    assert cache.size() <= MIB
    assert cache.size() > MIB - 2 * (QUERY + 1024)  # full: the bound comes from the count, not from keeping little
    assert off < 64 * 1024  # what the measurement itself leaves behind
    assert MIB / 2 < retained - off <= MIB + MIB  # measurably the cache's, and within the cap plus 1 MiB


def test_an_answer_past_its_window_goes_with_later_activity_on_other_keys():
    kept, answered = StaleAnswers(max_age=0.2, max_bytes=MIB), StaleAnswers(max_age=0.2, max_bytes=MIB)
    for cache in (kept, answered):
        cache.keep("old", 1, HEADERS, [b"x" * 100])
    one = kept.size()
    time.sleep(1.1)  # past the window, and past a second since the last sweep
    kept.keep("new", 1, HEADERS, [b"y" * 100])
    assert answered.answer("another") is None
    assert kept.size() == one and answered.size() == 0  # "old" went, never read again
    assert kept.answer("new") is not None


def test_brokered_reads_with_long_query_strings_fill_the_stale_cache_only_to_its_cap(make_app, serve, eventory):
    cap = 512 * 1024  # an eighth (64 KiB) takes one 32 KiB query with its answer
    live = serve(make_app(STALE_CACHE_BYTES=cap))
    headers = account(live)
    brokered = {**headers, "X-Eventory-Login": str(save_login(live, headers))}
    stale = live.app.extensions["eventory_reads"].stale
    padding = "x" * QUERY
    bodies = 0
    for number in range(60):
        answer = live.get(f"/eventory/jobs/list?n={number}&pad={padding}", headers=brokered)
        assert answer.status_code == 200
        bodies += len(answer.content)
    assert bodies < cap / 8  # counted by their bodies alone, all sixty would fit many times over
    assert cap / 2 < stale.size() <= cap  # the query strings count: the cache is full
    eventory.outage = 503
    newest = live.get(f"/eventory/jobs/list?n=59&pad={padding}", headers=brokered)
    first = live.get(f"/eventory/jobs/list?n=0&pad={padding}", headers=brokered)
    assert newest.headers.get("X-Eventory-Stale") == "true"
    assert first.status_code == 503  # pushed out to make room


# --- the token cache -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cipher() -> CredentialCipher:
    return CredentialCipher([Fernet.generate_key().decode()])


@pytest.fixture
def upstreams():
    """Upstream(url): a pooled session to `url`, closed at the end of the test."""
    made: list[Upstream] = []

    def make(url: str) -> Upstream:
        made.append(Upstream(url, 5.0, 5.0, 4))
        return made[-1]

    yield make
    for upstream in made:
        upstream.session.close()


def _credentials(cipher: CredentialCipher, count: int, password: str) -> list[Credentials]:
    sealed = cipher.encrypt(password)
    return [Credentials(number, 1, EVENTORY_LOGIN["username"], sealed, cipher) for number in range(1, count + 1)]


def test_sign_in_locks_go_once_nobody_holds_or_waits_for_them(cipher, upstreams):
    cache = TokenCache(ttl=60)
    unreachable = upstreams(f"http://127.0.0.1:{closed_port()}")
    for credentials in _credentials(cipher, 2_000, EVENTORY_LOGIN["password"]):
        with pytest.raises(EventoryUnavailable):
            cache.token(credentials, unreachable)
    assert cache._sign_in_locks == {}  # an unreachable Eventory remembers nothing, and leaves nothing


def test_concurrent_callers_share_one_sign_in_and_leave_no_lock_behind(cipher, eventory, upstreams):
    cache = TokenCache(ttl=60)
    upstream = upstreams(eventory.url)
    (credentials,) = _credentials(cipher, 1, EVENTORY_LOGIN["password"])
    eventory.login_delay = 0.3  # the others wait on the first one's lock meanwhile
    tokens = at_once(6, lambda _number: cache.token(credentials, upstream))
    assert len(set(tokens)) == 1 and isinstance(tokens[0], str)
    assert eventory.login_count[EVENTORY_LOGIN["username"]] == 1
    assert cache._sign_in_locks == {}


def test_remembered_rejections_are_bounded_and_the_newest_kept(cipher, eventory, upstreams, monkeypatch):
    monkeypatch.setattr(TokenCache, "MAX_ENTRIES", 5)
    cache = TokenCache(ttl=60, rejection_backoff=900)
    upstream = upstreams(eventory.url)
    logins = _credentials(cipher, 12, "not anna's password")
    for credentials in logins:
        with pytest.raises(EventoryRejectedLogin):
            cache.token(credentials, upstream)
    assert list(cache._rejected) == [credentials.key for credentials in logins[-5:]]
    asked = eventory.login_count[EVENTORY_LOGIN["username"]]
    with pytest.raises(EventoryRejectedLogin):
        cache.token(logins[-1], upstream)  # still refused for its back-off, without asking Eventory
    assert eventory.login_count[EVENTORY_LOGIN["username"]] == asked
    assert cache._sign_in_locks == {}


def test_tokens_are_bounded_and_the_newest_kept(cipher, eventory, upstreams, monkeypatch):
    monkeypatch.setattr(TokenCache, "MAX_ENTRIES", 5)
    cache = TokenCache(ttl=60)
    upstream = upstreams(eventory.url)
    logins = _credentials(cipher, 12, EVENTORY_LOGIN["password"])
    tokens = [cache.token(credentials, upstream) for credentials in logins]
    assert list(cache._tokens) == [credentials.key for credentials in logins[-5:]]
    asked = eventory.login_count[EVENTORY_LOGIN["username"]]
    assert cache.token(logins[-1], upstream) == tokens[-1]  # the newest: no sign-in
    assert eventory.login_count[EVENTORY_LOGIN["username"]] == asked
    cache.token(logins[0], upstream)  # the oldest went: signed in again
    assert eventory.login_count[EVENTORY_LOGIN["username"]] == asked + 1
    assert len(cache._tokens) == 5 and cache.logins_held() == {login.login_id for login in logins[-4:]} | {1}
    cache.forget(logins[-1].login_id)
    assert logins[-1].key not in cache._tokens
