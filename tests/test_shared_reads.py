"""Identical concurrent brokered GETs share one call to Eventory, streamed to every waiter: the
same status, headers and body, the first bytes as soon as Eventory sends them; never across
logins; a waiter hanging up, the first caller among them, leaves the others their answer."""

from __future__ import annotations

import hashlib
import json

import pytest
import requests
import urllib3

from .fake_eventory import GZIP_BODY, GZIP_PLAIN, HELD_FIRST, HELD_REST
from .helpers import at_once, save_login

MIB = 1024 * 1024
# How late the fake answers, so that callers released together all arrive while the first waits
# (a loaded CI machine may take a few hundred ms to get ten requests through the guard).
JOIN_WINDOW = 1.0


def _brokered(headers: dict, login_id: int) -> dict:
    return {**headers, "X-Eventory-Login": str(login_id)}


@pytest.fixture
def live(app, serve):
    """The app under waitress with threads for every concurrent caller here."""
    return serve(app, threads=24)


@pytest.fixture
def signed_in(live, ada, eventory) -> dict:
    """Ada's login, signed in once (its token cached), and the fake's counters cleared: her brokered headers."""
    login_id = save_login(live, ada)
    assert live.post(f"/logins/{login_id}/check", headers=ada).json()["status"] == "ok"
    eventory.reset()
    return _brokered(ada, login_id)


def _held(live, headers) -> tuple[requests.Response, bytes]:
    """GET /held, streamed: the open answer and its first part (a read timeout fails it if nothing streams)."""
    answer = requests.get(live.url + "/eventory/held", headers=headers, stream=True, timeout=(5, 5))
    return answer, answer.raw.read(len(HELD_FIRST))


@pytest.fixture
def held(eventory):
    """The fake answers JOIN_WINDOW late (so every caller joins) and holds /held after its first part."""
    eventory.delay = JOIN_WINDOW
    eventory.hold()
    return eventory


def _in_flight(live) -> int:
    return live.app.extensions["eventory_reads"].in_flight()


def test_ten_identical_concurrent_gets_reach_eventory_once(live, signed_in, eventory):
    eventory.delay = JOIN_WINDOW
    answers = at_once(10, lambda _n: live.get("/eventory/jobs/list?page=1", headers=signed_in))
    assert [answer.status_code for answer in answers] == [200] * 10
    assert len({answer.content for answer in answers}) == 1 and answers[0].json()[0]["organisation"] == "Org One"
    assert len({answer.headers["Content-Type"] for answer in answers}) == 1
    assert eventory.calls("/jobs/list") == 1
    assert _in_flight(live) == 0
    # Once answered, the next identical GET is a call of its own: sharing is not caching.
    assert live.get("/eventory/jobs/list?page=1", headers=signed_in).status_code == 200
    assert eventory.calls("/jobs/list") == 2


def test_ten_identical_large_answers_are_one_call_and_ten_whole_bodies(live, signed_in, eventory):
    size = 6 * MIB
    eventory.delay = JOIN_WINDOW

    def fetch(_number):
        with live.get(f"/eventory/big-json?size={size}", headers=signed_in, stream=True) as answer:
            digest, length = hashlib.sha256(), 0
            for chunk in answer.iter_content(256 * 1024):
                digest.update(chunk)
                length += len(chunk)
            return answer.status_code, length, digest.hexdigest()

    results = at_once(10, fetch)
    assert len(set(results)) == 1, results
    assert results[0][:2] == (200, size)
    assert eventory.calls("/big-json") == 1


def test_every_waiter_gets_the_first_bytes_before_eventory_sends_the_rest(live, signed_in, held):
    eventory = held
    started = at_once(10, lambda _n: _held(live, signed_in))
    assert [part for _answer, part in started] == [HELD_FIRST] * 10
    eventory.release()
    for answer, _part in started:
        assert answer.raw.read() == HELD_REST
        answer.close()
    assert eventory.calls("/held") == 1


def test_the_first_caller_hanging_up_leaves_the_others_their_answer(live, signed_in, held):
    eventory = held

    def call(number):
        answer, part = _held(live, signed_in)
        if number in (0, 1):  # hang up mid-answer
            answer.close()
            return part
        return answer

    answers = at_once(4, call)
    assert answers[:2] == [HELD_FIRST, HELD_FIRST]
    eventory.release()
    for answer in answers[2:]:
        assert answer.raw.read() == HELD_REST
        answer.close()
    assert eventory.calls("/held") == 1
    assert _in_flight(live) == 0


def test_everyone_hanging_up_ends_the_call(live, signed_in, held):
    eventory = held

    def hang_up(_number):
        answer, part = _held(live, signed_in)
        answer.close()
        return part

    assert at_once(3, hang_up) == [HELD_FIRST] * 3
    eventory.release()
    assert live.get("/eventory/held", headers=signed_in).content == HELD_FIRST + HELD_REST
    assert eventory.calls("/held") == 2
    assert _in_flight(live) == 0


def test_an_answer_that_breaks_off_breaks_off_for_every_waiter(live, signed_in, held):
    eventory = held
    started = at_once(3, lambda _n: _held(live, signed_in))
    eventory.release(broken=True)
    for answer, part in started:
        assert part == HELD_FIRST
        with pytest.raises(urllib3.exceptions.HTTPError):  # closed short of its Content-Length
            answer.raw.read()
        answer.close()
    assert eventory.calls("/held") == 1
    assert _in_flight(live) == 0
    eventory.hold()
    eventory.release()
    assert live.get("/eventory/held", headers=signed_in).content == HELD_FIRST + HELD_REST


def test_different_logins_never_share(live, ada, eventory):
    first, second = save_login(live, ada), save_login(live, ada, label="Same account, other login")
    for login_id in (first, second):
        live.post(f"/logins/{login_id}/check", headers=ada)
    eventory.reset()
    eventory.delay = JOIN_WINDOW
    answers = at_once(6, lambda n: live.get("/eventory/jobs/list", headers=_brokered(ada, (first, second)[n % 2])))
    assert [answer.status_code for answer in answers] == [200] * 6
    assert eventory.calls("/jobs/list") == 2
    tokens = {headers["authorization"] for _method, path, headers in eventory.requests if path == "/jobs/list"}
    assert len(tokens) == 2  # each with its own login's token


@pytest.mark.parametrize(
    "method, extra",
    [("HEAD", {}), ("GET", {"If-None-Match": '"x"'}), ("GET", {"Range": "bytes=0-9"})],
    ids=["head", "conditional", "range"],
)
def test_heads_conditional_and_range_gets_are_sent_each_on_its_own(live, signed_in, eventory, method, extra):
    eventory.delay = JOIN_WINDOW
    answers = at_once(3, lambda _n: live.request(method, "/eventory/jobs/list", headers={**signed_in, **extra}))
    assert [answer.status_code for answer in answers] == [200] * 3
    assert eventory.calls("/jobs/list") == 3


def test_a_relayed_get_and_a_fan_out_share_one_call(live, ada, signed_in, eventory):
    eventory.delay = JOIN_WINDOW
    login_id = signed_in["X-Eventory-Login"]
    identity = {"Accept-Encoding": "identity", "Accept": "application/json"}

    def call(number):
        if number == 0:
            return live.get("/eventory/jobs/list", headers={**signed_in, **identity}).json()
        return live.get(f"/multisite/jobs/list?logins={login_id}", headers={**ada, **identity}).json()

    relayed, fanned = at_once(2, call)
    assert fanned["results"][0]["data"] == relayed
    assert eventory.calls("/jobs/list") == 1


def test_a_gzip_answer_is_relayed_as_sent_and_read_by_the_fan_out(live, ada, signed_in, eventory):
    """/gzip answers gzip whatever is asked: the relay passes it on, the fan-out un-gzips it."""
    relayed = requests.get(
        live.url + "/eventory/gzip", headers={**signed_in, "Accept-Encoding": "gzip"}, stream=True, timeout=30
    )
    assert relayed.headers["Content-Encoding"] == "gzip"
    assert relayed.raw.read(decode_content=False) == GZIP_BODY
    fanned = live.get("/multisite/gzip", headers=ada).json()["results"][0]
    assert fanned["error"] is None and fanned["data"] == json.loads(GZIP_PLAIN)


def test_a_waiter_that_does_not_read_holds_the_others_back_not_the_servers_memory(live, signed_in, eventory):
    reads = live.app.extensions["eventory_reads"]
    reads.ahead = 256 * 1024  # instead of 16 MiB, so waitress's own buffers do not hide it
    size = 64 * MIB
    eventory.delay = JOIN_WINDOW

    def start(_number):
        answer = requests.get(live.url + f"/eventory/big-json?size={size}", headers=signed_in, stream=True, timeout=5)
        return answer, answer.raw.read(1024)

    (fast, _), (stalled, _) = at_once(2, start)
    read = 0
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):  # held back by the one that stopped reading
        while chunk := fast.raw.read(MIB):
            read += len(chunk)
    # What the stalled one's waitress buffers took, and no more: not the whole answer.
    assert read < size // 2, read
    stalled.close()
    fast.close()
    assert eventory.calls("/big-json") == 1
