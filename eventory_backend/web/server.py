"""How waitress serves the app: the settings `python wsgi.py` and the tests share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def waitress_options(config: Mapping[str, Any]) -> dict:
    """The waitress settings `python wsgi.py` and the tests share: the app judges X-Forwarded-*."""
    return {
        "threads": config["THREADS"],
        "ident": "eventory-backend",
        "clear_untrusted_proxy_headers": False,
        # The relay streams; waitress need not queue 16 MiB per response (and keep it) to do so.
        "outbuf_high_watermark": 1024 * 1024,
    }
