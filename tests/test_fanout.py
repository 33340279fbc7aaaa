"""/multisite/<path>: one call to Eventory per saved login, in parallel, each answered on its own."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from .helpers import ADA, EVENTORY_LOGIN, account, save_login, start_instance

MIB = 1024 * 1024


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


# --- the bytes one fan-out holds (BACKEND_FANOUT_MAX_BYTES) --------------------------------------


def test_a_fan_out_holds_at_most_its_byte_budget_and_says_which_entries_did_not_fit(make_app, serve, eventory):
    live = serve(make_app(FANOUT_MAX_BYTES=3 * MIB))
    headers = account(live)
    for number in range(4):
        save_login(live, headers, label=f"Org {number}")
    size = 1200 * 1024  # two fit in 3 MiB, a third would not
    results = live.get(f"/multisite/big-json?size={size}", headers=headers).json()["results"]
    answered = [entry for entry in results if entry["data"] is not None]
    refused = [entry for entry in results if entry["data"] is None]
    assert len(answered) == 2 and all(entry["error"] is None and entry["status"] == 200 for entry in answered)
    assert len(refused) == 2 and all("larger than one fan-out may hold" in entry["error"] for entry in refused)
    assert sorted(entry["login_id"] for entry in results) == [entry["login_id"] for entry in results]  # in order
    # Each call has its own budget: the next one is answered the same way.
    again = live.get(f"/multisite/big-json?size={size}", headers=headers).json()["results"]
    assert sum(entry["data"] is not None for entry in again) == 2


def test_answers_within_the_budget_are_all_returned(make_app, serve, eventory):
    live = serve(make_app(FANOUT_MAX_BYTES=3 * MIB))
    headers = account(live)
    for number in range(4):
        save_login(live, headers, label=f"Org {number}")
    results = live.get(f"/multisite/big-json?size={700 * 1024}", headers=headers).json()["results"]
    assert [entry["error"] for entry in results] == [None] * 4
    assert all(len(json.dumps(entry["data"])) >= 700 * 1024 - 64 for entry in results)


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="reads the server's peak memory from /proc (Linux)"
)
def test_one_fan_out_over_ten_large_answers_has_a_bounded_memory_cost(tmp_path, eventory):
    process, url = start_instance(
        tmp_path, "server", {"BACKEND_EVENTORY_URL": eventory.url, "BACKEND_RATELIMIT_ENABLED": "false"}
    )
    try:
        requests.post(f"{url}/auth/register", json=ADA, timeout=30)
        token = requests.post(f"{url}/auth/login", data=ADA, timeout=30).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for number in range(10):
            login = {**EVENTORY_LOGIN, "label": f"Org {number}"}
            assert requests.post(f"{url}/logins", json=login, headers=headers, timeout=30).status_code == 201
        Path(f"/proc/{process.pid}/clear_refs").write_text("5")  # reset the peak to now
        before = _peak_rss_mib(process.pid)
        answer = requests.get(f"{url}/multisite/big-json?size={int(9.5 * MIB)}", headers=headers, timeout=120)
        growth = _peak_rss_mib(process.pid) - before
        results = answer.json()["results"]
        assert answer.status_code == 200 and len(results) == 10
        assert sum(entry["data"] is not None for entry in results) == 1  # the default 10 MiB holds one
        print(f"one fan-out over ten 9.5 MiB answers grew the server by {growth:.0f} MiB")
        assert growth < 400, f"one fan-out grew the server by {growth:.0f} MiB"
    finally:
        process.terminate()
        process.wait(timeout=15)
