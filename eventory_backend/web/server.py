"""How waitress serves the app: the settings `python wsgi.py` and the tests share, sized for a
proxy whose answers stream for as long as Eventory takes."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

import waitress

from . import waitress_send_timeout

log = logging.getLogger("eventory_backend.server")


def waitress_options(config: Mapping[str, Any]) -> dict:
    """The waitress settings for this app (also for `waitress-serve`: see docs/scaling-out.md)."""
    return {
        "threads": config["THREADS"],
        "ident": "eventory-backend",
        # The app judges X-Forwarded-* itself (BACKEND_TRUSTED_PROXIES).
        "clear_untrusted_proxy_headers": False,
        # The relay streams; waitress need not queue 16 MiB per response (and keep it) to do so.
        "outbuf_high_watermark": 1024 * 1024,
        # Many clients wait on Eventory at once; slow or idle ones must not lock the rest out.
        "connection_limit": config["CONNECTION_LIMIT"],
        "channel_timeout": config["CHANNEL_TIMEOUT"],
        "cleanup_interval": max(1, min(30, config["CHANNEL_TIMEOUT"] // 2)),
        # No body past the largest the app accepts is received at all: 413 before it is read.
        "max_request_body_size": max(config["PROXY_MAX_BODY"], config["MAX_CONTENT_LENGTH"]),
    }


def create_server(app, **overrides: Any):
    """A waitress server for `app` with this app's settings (`overrides` win), whose connections
    give up on a client that stops reading (BACKEND_PROXY_SEND_TIMEOUT)."""
    server = waitress.create_server(app, **{**waitress_options(app.config), **overrides})
    waitress_send_timeout.install(server, app.config["PROXY_SEND_TIMEOUT"])
    return server


def cpus_to_keep_to(setting: str | list[int], allowed: set[int], port: int) -> set[int] | None:
    """The CPUs `python wsgi.py` runs on, or None to leave the operating system's choice.

    One CPython process runs Python on one core at a time (the GIL); when the operating system
    moves its threads between cores, every hand-over of the GIL crosses cores and costs far more
    (the bench measured 1.4x the CPU per relayed request at 16 connections, 3.1x at 64). So by
    default (`auto`) the server keeps to one of the CPUs it may use, chosen by its port (instances
    on consecutive ports of one machine take different cores). `off` leaves it unpinned; a list
    of CPU numbers pins it to those (the ones it may not use are left out)."""
    if setting == "off" or not allowed:
        return None
    if setting == "auto":
        if len(allowed) < 2:
            return None
        ordered = sorted(allowed)
        return {ordered[port % len(ordered)]}
    chosen = {cpu for cpu in setting if cpu in allowed}
    if not chosen:
        raise ValueError("BACKEND_CPU_AFFINITY names no CPU this process may run on.")
    return chosen


def keep_to_cpus(setting: str | list[int], port: int) -> set[int] | None:
    """Pin this process's threads (those started from now on included) as `cpus_to_keep_to` says,
    where the operating system allows it (Linux); elsewhere, such as Windows, nothing changes."""
    if not (hasattr(os, "sched_getaffinity") and hasattr(os, "sched_setaffinity")):
        return None
    chosen = cpus_to_keep_to(setting, os.sched_getaffinity(0), port)
    if chosen is not None:
        os.sched_setaffinity(0, chosen)  # this thread, and every thread it starts from now on
        for thread in threading.enumerate():  # and any started before
            if thread.native_id is not None and thread.is_alive():
                try:
                    os.sched_setaffinity(thread.native_id, chosen)
                except OSError:  # it ended meanwhile
                    pass
        log.info("keeping to cpus=%s (BACKEND_CPU_AFFINITY)", ",".join(map(str, sorted(chosen))))
    return chosen


def serve(app, host: str, port: int) -> None:
    """`python wsgi.py`: serve until interrupted, on one core unless BACKEND_CPU_AFFINITY says otherwise."""
    keep_to_cpus(app.config["CPU_AFFINITY"], port)  # before waitress starts its threads: they inherit it
    server = create_server(app, host=host, port=port)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
