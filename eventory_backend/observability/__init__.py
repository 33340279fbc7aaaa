"""Operating the backend: health checks (health.py), Prometheus metrics (metrics.py), JSON logs
(logging.py), request ids and the access log (access_log.py)."""

from __future__ import annotations

from flask import Flask

from . import access_log, metrics
from .logging import configure_logging


def init_app(app: Flask) -> None:
    """Logging, then the metrics (before the objects that report to them are built), then the
    per-request hooks. The health and metrics blueprints are registered by the factory."""
    configure_logging(app.config.get("LOG_LEVEL", "INFO"))
    metrics.init_app(app)
    access_log.init_app(app)
