"""BACKEND_STALE_IF_ERROR: while Eventory cannot be reached, times out or answers 5xx, a brokered
GET gets the last 200 to the same login, path and query if it is young enough, with `Age` and
`X-Eventory-Stale: true` (in /multisite: `"stale": true, "age_s"`); never another login's, never
past the window, never after the login's credentials changed or it was deleted."""

from __future__ import annotations

import time

import pytest

from eventory_backend.proxy.stale import LARGEST_SHARE, StaleAnswers

from .helpers import EVENTORY_LOGIN, account, save_login


def _brokered(headers: dict, login_id: int) -> dict:
    return {**headers, "X-Eventory-Login": str(login_id)}


@pytest.mark.parametrize("outage", ["drop", 503, 500], ids=["unreachable", "503", "500"])
def test_while_eventory_is_down_the_last_good_answer_stands_in(live, ada, eventory, outage):
    brokered = _brokered(ada, save_login(live, ada))
    good = live.get("/eventory/jobs/list?page=1", headers=brokered)
    assert good.status_code == 200 and "X-Eventory-Stale" not in good.headers and "Age" not in good.headers
    time.sleep(1.1)
    eventory.outage = outage
    stale = live.get("/eventory/jobs/list?page=1", headers=brokered)
    assert stale.status_code == 200
    assert stale.content == good.content and stale.headers["Content-Type"] == good.headers["Content-Type"]
    assert stale.headers["X-Eventory-Stale"] == "true" and 1 <= int(stale.headers["Age"]) <= 5
    # Another query, never answered before, has nothing to stand in.
    other = live.get("/eventory/jobs/list?page=2", headers=brokered)
    assert other.status_code == (502 if outage == "drop" else outage)


@pytest.mark.parametrize(
    "settings, trouble",
    [({"EVENTORY_TOKEN_TTL": 0}, {"outage": 503}), ({"PROXY_READ_TIMEOUT": 0.5}, {"delay": 1.0})],
    ids=["sign-in-impossible", "too-slow"],
)
def test_a_sign_in_that_cannot_be_made_or_a_slow_answer_gets_the_last_good_one(
    make_app, serve, eventory, settings, trouble
):
    live = serve(make_app(**settings))  # a token TTL of 0: every call signs in
    headers = account(live)
    brokered = _brokered(headers, save_login(live, headers))
    good = live.get("/eventory/jobs/list", headers=brokered)
    for name, value in trouble.items():
        setattr(eventory, name, value)
    stale = live.get("/eventory/jobs/list", headers=brokered)
    assert (stale.status_code, stale.headers.get("X-Eventory-Stale"), stale.content) == (200, "true", good.content)


def test_no_stale_answer_past_the_window_or_when_turned_off(make_app, serve, eventory):
    for window, wait in ((1, 1.2), (0, 0)):
        live = serve(make_app(STALE_IF_ERROR=window))
        headers = account(live)
        brokered = _brokered(headers, save_login(live, headers))
        assert live.get("/eventory/jobs/list", headers=brokered).status_code == 200
        time.sleep(wait)
        eventory.outage = 503
        late = live.get("/eventory/jobs/list", headers=brokered)
        assert late.status_code == 503 and "X-Eventory-Stale" not in late.headers
        eventory.outage = None


def test_no_stale_answer_for_another_login_or_after_a_credentials_change(live, ada, eventory):
    first, second = save_login(live, ada), save_login(live, ada, label="Second")
    assert live.get("/eventory/jobs/list", headers=_brokered(ada, first)).status_code == 200
    assert live.get("/eventory/user-info", headers=_brokered(ada, second)).status_code == 200
    eventory.outage = 503
    assert live.get("/eventory/jobs/list", headers=_brokered(ada, second)).status_code == 503
    assert live.get("/eventory/jobs/list", headers=_brokered(ada, first)).headers["X-Eventory-Stale"] == "true"

    eventory.outage = None
    saved = live.request("PUT", f"/logins/{first}", json={"password": EVENTORY_LOGIN["password"]}, headers=ada)
    assert saved.status_code == 200
    assert live.app.extensions["eventory_reads"].stale.size() > 0  # the second login's user-info is kept
    eventory.outage = 503
    after = live.get("/eventory/jobs/list", headers=_brokered(ada, first))
    assert after.status_code == 502 and "X-Eventory-Stale" not in after.headers  # the sign-in failed, no stale


def test_a_refused_login_is_not_answered_from_before(live, ada, eventory):
    eventory.add_user("dora@example.com", "doras-password", "Org Dora")
    login_id = save_login(live, ada, username="dora@example.com", password="doras-password")
    assert live.get("/eventory/jobs/list", headers=_brokered(ada, login_id)).status_code == 200
    eventory.set_password("dora@example.com", "changed")
    eventory.expire_all_tokens()
    refused = live.get("/eventory/jobs/list", headers=_brokered(ada, login_id))
    assert refused.status_code == 502 and "rejected" in refused.json()["detail"]


def test_fan_out_entries_say_they_are_stale_and_how_old(live, ada, eventory):
    login_id = save_login(live, ada)
    fresh = live.get("/multisite/jobs/list", headers=ada).json()["results"][0]
    assert (fresh["stale"], fresh["age_s"]) == (False, None)
    time.sleep(1.1)
    eventory.outage = "drop"
    entry = live.get("/multisite/jobs/list", headers=ada).json()["results"][0]
    assert entry["login_id"] == login_id and entry["data"] == fresh["data"]
    assert (entry["status"], entry["error"], entry["stale"]) == (200, None, True) and entry["age_s"] >= 1


def test_stale_answers_are_exposed_to_the_browser(live, ada):
    answer = live.get("/auth/me", headers={**ada, "Origin": "https://multisite.example"})
    exposed = {name.strip().lower() for name in answer.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"age", "x-eventory-stale"} <= exposed


# --- the cache itself: in memory, bounded, least recently used out -------------------------------


def test_the_cache_holds_at_most_its_bytes_least_recently_used_out():
    probe = StaleAnswers(max_age=60, max_bytes=10_000)
    probe.keep("a", 1, [("Content-Type", "application/json")], [b"x" * 100])
    entry = probe.size()  # key, headers, body and overhead: every one-letter key below alike
    assert entry > 100 + len("Content-Type") + len("application/json")
    cache = StaleAnswers(max_age=60, max_bytes=8 * entry)
    for name in "abcdefgh":
        cache.keep(name, 1, [("Content-Type", "application/json")], [b"x" * 100])
    assert cache.size() == 8 * entry
    assert cache.answer("a") is not None  # a is now the most recently used
    cache.keep("i", 1, [("Content-Type", "application/json")], [b"y" * 100])
    assert cache.answer("b") is None and cache.answer("a") is not None and cache.size() == 8 * entry
    cache.keep("big", 1, [], [b"z" * (8 * entry // LARGEST_SHARE + 1)])  # over an eighth: not kept
    assert cache.answer("big") is None


def test_an_answer_whose_key_makes_it_over_an_eighth_of_the_cache_is_not_kept():
    cache = StaleAnswers(max_age=60, max_bytes=8 * 1024)
    cache.keep(("login", "jobs/list", "q=" + "x" * 1024), 1, [], [b"[]"])  # the body alone is tiny
    assert cache.answer(("login", "jobs/list", "q=" + "x" * 1024)) is None and cache.size() == 0
    cache.keep(("login", "jobs/list", "q=1"), 1, [], [b"[]"])
    assert cache.answer(("login", "jobs/list", "q=1")) is not None


def test_the_cache_forgets_a_login_and_turned_off_keeps_nothing():
    cache = StaleAnswers(max_age=60, max_bytes=10_000)
    cache.keep("one", 1, [], [b"1"])
    cache.keep("two", 2, [], [b"2"])
    cache.forget(1)
    assert cache.answer("one") is None and b"".join(cache.answer("two").body) == b"2"
    off = StaleAnswers(max_age=0, max_bytes=10_000)
    off.keep("one", 1, [], [b"1"])
    assert off.size() == 0 and off.answer("one") is None


def test_deleting_a_login_drops_its_kept_answers_and_only_its(live, ada, eventory):
    first, second = save_login(live, ada), save_login(live, ada, label="Second")
    stale = live.app.extensions["eventory_reads"].stale
    sizes: list[int] = []
    for login_id in (first, second):
        assert live.get("/eventory/jobs/list", headers=_brokered(ada, login_id)).status_code == 200
        # An answer with a Content-Length is kept by the time its client has the whole of it.
        sizes.append(stale.size())
    one, both = sizes
    assert one > 0 and both == 2 * one  # the same answer, kept once for each login
    assert live.request("DELETE", f"/logins/{first}", headers=ada).status_code == 204
    assert stale.size() == one  # only the deleted login's answer went
    eventory.outage = 503
    assert live.get("/eventory/jobs/list", headers=_brokered(ada, second)).headers["X-Eventory-Stale"] == "true"
