"""How the server holds up as `python wsgi.py` runs it (issue 11, bounded resources): a client
that stops reading cannot hold a thread, slow or many connections cannot lock everyone out, and
an oversized body is refused before it is received. Real processes, real sockets, 127.0.0.1
only; every loop is bounded."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import requests

from config import from_environ
from eventory_backend.web import server

from .helpers import start_instance

DOWNLOAD = 200 * 1024 * 1024  # far more than any socket buffer holds


def _raw(url: str, request: bytes, receive_buffer: int | None = None) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect((host, int(port)))
    if request:
        sock.sendall(request)
    return sock


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Read (and drop) what the server sent until it closes the connection, or `within` passes."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if not sock.recv(1 << 20):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
    return False


def _stop(process) -> None:
    process.terminate()
    process.wait(timeout=15)


def test_clients_that_stop_reading_are_dropped_and_free_their_threads(tmp_path, eventory):
    process, url = start_instance(
        tmp_path,
        "server",
        {
            "BACKEND_EVENTORY_URL": eventory.url,
            "BACKEND_PROXY_PUBLIC": "true",
            "BACKEND_THREADS": "4",
            "BACKEND_PROXY_SEND_TIMEOUT": "2",
            "BACKEND_RATELIMIT_ENABLED": "false",
        },
    )
    stuck = []
    try:
        request = f"GET /eventory/download?size={DOWNLOAD} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        stuck = [_raw(url, request, receive_buffer=4096) for _ in range(8)]  # twice the threads
        started = time.monotonic()
        answered = requests.get(f"{url}/healthz", timeout=30)
        assert answered.status_code == 200
        assert time.monotonic() - started < 20
        for _ in range(3):  # and again, while the stuck clients are still connected
            assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
        assert all(_closed_by_server(sock, within=30) for sock in stuck)
    finally:
        for sock in stuck:
            sock.close()
        _stop(process)
    log = (tmp_path / "server.log").read_text()
    assert log.count("client stopped reading") >= 8


def test_many_slow_connections_do_not_lock_others_out(tmp_path, eventory):
    process, url = start_instance(
        tmp_path, "server", {"BACKEND_EVENTORY_URL": eventory.url, "BACKEND_RATELIMIT_ENABLED": "false"}
    )
    trickling = []
    try:
        # More than waitress's default connection limit (100), each sending its headers slowly.
        trickling = [_raw(url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ") for _ in range(150)]
        for _ in range(3):
            for sock in trickling:
                sock.sendall(b"a")
            started = time.monotonic()
            assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
            assert time.monotonic() - started < 5
            time.sleep(0.5)
    finally:
        for sock in trickling:
            sock.close()
        _stop(process)


def test_a_silent_connection_is_closed_after_the_channel_timeout(tmp_path, eventory):
    process, url = start_instance(
        tmp_path, "server", {"BACKEND_EVENTORY_URL": eventory.url, "BACKEND_CHANNEL_TIMEOUT": "2"}
    )
    try:
        silent = _raw(url, b"")
        assert _closed_by_server(silent, within=8)
        silent.close()
    finally:
        _stop(process)


def test_a_body_past_the_largest_limit_is_refused_before_it_is_received(tmp_path, eventory):
    process, url = start_instance(
        tmp_path,
        "server",
        {"BACKEND_EVENTORY_URL": eventory.url, "BACKEND_PROXY_MAX_BODY": str(2 * 1024 * 1024)},
    )
    try:
        for path in ("/auth/login", "/eventory/echo", "/logins"):
            # Headers only: a server that waited for the 300 MiB would never answer.
            sock = _raw(url, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {300 * 1024 * 1024}\r\n\r\n".encode())
            answer = sock.recv(65536)
            sock.close()
            assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:200])
        # Under the limit, the app answers as before (its own JSON errors).
        small = requests.post(f"{url}/eventory/echo", data=b"x" * 1024, timeout=10)
        assert small.status_code == 401 and small.json()["detail"]
    finally:
        _stop(process)


# --- one core by default (issue 12) ---------------------------------------------------------------


def test_auto_keeps_to_one_allowed_cpu_chosen_by_port():
    allowed = {0, 1, 2, 3}
    chosen = {port: server.cpus_to_keep_to("auto", allowed, port) for port in (8000, 8001, 8002, 8003)}
    assert all(len(cpus) == 1 and cpus <= allowed for cpus in chosen.values())
    assert len(set().union(*chosen.values())) == 4  # consecutive ports, different cores
    assert server.cpus_to_keep_to("auto", {5, 9}, 8001) in ({5}, {9})


def test_off_one_cpu_and_lists():
    assert server.cpus_to_keep_to("off", {0, 1}, 8000) is None
    assert server.cpus_to_keep_to("auto", {3}, 8000) is None  # one CPU: nothing to choose
    assert server.cpus_to_keep_to([1, 7], {0, 1, 2}, 8000) == {1}  # CPUs it may not use are left out
    with pytest.raises(ValueError, match="BACKEND_CPU_AFFINITY"):
        server.cpus_to_keep_to([7], {0, 1}, 8000)


@pytest.mark.parametrize("value", ["sometimes", "-1", "0,x", ","])
def test_an_unreadable_cpu_affinity_is_named_at_start(value):
    with pytest.raises(ValueError, match="BACKEND_CPU_AFFINITY"):
        from_environ({"BACKEND_CPU_AFFINITY": value})
    assert from_environ({"BACKEND_CPU_AFFINITY": " 0, 1 "}) == {"CPU_AFFINITY": [0, 1]}
    assert from_environ({"BACKEND_CPU_AFFINITY": "OFF"}) == {"CPU_AFFINITY": "off"}


def _cpus_of_every_thread(pid: int) -> set[str]:
    """Each thread's allowed CPUs, as Linux lists them ("0-1", "1")."""
    return {
        line.split(":", 1)[1].strip()
        for task in Path(f"/proc/{pid}/task").iterdir()
        for line in (task / "status").read_text().splitlines()
        if line.startswith("Cpus_allowed_list:")
    }


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux and at least two CPUs this process may use",
)
@pytest.mark.parametrize("setting", [None, "off"], ids=["default", "off"])
def test_python_wsgi_py_keeps_every_thread_on_one_core_unless_told_not_to(tmp_path, eventory, setting):
    environment = {"BACKEND_EVENTORY_URL": eventory.url}
    if setting is not None:
        environment["BACKEND_CPU_AFFINITY"] = setting
    process, url = start_instance(tmp_path, "pinned", environment)
    try:
        assert requests.get(url + "/healthz", timeout=5).status_code == 200
        cpus = _cpus_of_every_thread(process.pid)
        unpinned = _cpus_of_every_thread(os.getpid())
        if setting == "off":
            assert cpus == unpinned
        else:
            assert len(cpus) == 1 and cpus != unpinned  # every thread (waitress's 64 too) on the same one
            (one,) = cpus
            assert one.isdigit() and int(one) in os.sched_getaffinity(0)
    finally:
        process.terminate()
        process.wait(timeout=10)
