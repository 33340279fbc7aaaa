"""/multisite/<path>: one call to Eventory per saved login, in parallel, each answered on its own."""

from __future__ import annotations

import time

import pytest

from .helpers import account, save_login


def test_fan_out_reports_each_login_in_order(live, ada, eventory):
    eventory.add_user("bo@example.com", "bo-pass-2", "Org Two")
    first = save_login(live, ada)
    broken = save_login(live, ada, label="Broken", password="wrong")
    second = save_login(live, ada, label="Org Two", username="bo@example.com", password="bo-pass-2", color="#00ff00")
    response = live.get("/multisite/jobs/list", headers=ada)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [entry["login_id"] for entry in results] == [first, broken, second]
    assert (
        results[0]["data"][0]["organisation"] == "Org One"
        and results[0]["status"] == 200
        and results[0]["error"] is None
    )
    assert results[1]["data"] is None and "rejected" in results[1]["error"]
    assert results[2]["data"][0]["organisation"] == "Org Two" and results[2]["color"] == "#00ff00"
    assert all(entry["elapsed_ms"] >= 0 for entry in results)


def test_fan_out_subset_and_query(live, ada, eventory):
    first = save_login(live, ada)
    save_login(live, ada, label="Second")
    results = live.get(f"/multisite/echo/x?b=2&logins={first}&a=1", headers=ada).json()["results"]
    assert [entry["login_id"] for entry in results] == [first]
    assert results[0]["data"]["query"] == "b=2&a=1"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "a",
        "1,,x",
        "1;2",
        "99999999999999999999",
        pytest.param("\u0661", id="arabic-indic"),
        pytest.param("\uff11", id="fullwidth"),
        pytest.param("9223372036854775808", id="two-to-the-63"),
    ],
)
def test_fan_out_bad_logins_parameter_is_422(live, ada, eventory, value):
    save_login(live, ada)
    eventory.reset()
    response = live.get(f"/multisite/jobs/list?logins={value}", headers=ada)
    assert response.status_code == 422
    assert "logins" in response.json()["detail"]
    assert eventory.requests == []


def test_fan_out_runs_in_parallel_and_times_out_per_login(make_app, serve, eventory):
    live = serve(make_app(FANOUT_TIMEOUT=1.0), threads=16)
    headers = account(live)
    for number in range(10):
        eventory.add_user(f"user{number}@example.com", "pass", f"Org {number}")
        save_login(live, headers, label=f"Org {number}", username=f"user{number}@example.com", password="pass")
    live.get("/multisite/jobs/list", headers=headers)  # sign every login in first
    eventory.delay = 0.2
    started = time.monotonic()
    results = live.get("/multisite/jobs/list", headers=headers).json()["results"]
    elapsed = time.monotonic() - started
    assert [entry["status"] for entry in results] == [200] * 10
    assert elapsed < 1.5, f"10 calls of 200 ms took {elapsed:.2f}s: not parallel"  # sequential would be 2 s

    eventory.delay = 0.0
    timed_out = live.get("/multisite/slow?seconds=3", headers=headers).json()["results"]
    assert all(entry["error"] and entry["data"] is None for entry in timed_out)
