"""How waitress serves the app: the settings `python wsgi.py` and the tests share, sized for a
proxy whose answers stream for as long as Eventory takes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import waitress

from . import waitress_send_timeout


def waitress_options(config: Mapping[str, Any]) -> dict:
    """The waitress settings for this app (also for `waitress-serve`: see the README)."""
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


def serve(app, host: str, port: int) -> None:
    """`python wsgi.py`: serve until interrupted."""
    server = create_server(app, host=host, port=port)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
