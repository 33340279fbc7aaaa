"""Prometheus metrics: one registry per app, the collectors, and `GET /metrics`.

`GET /metrics` exists only with `BACKEND_METRICS=true`. It needs no token, so it must not be
exposed publicly: let only the Prometheus scraper reach it (a reverse-proxy rule or a private
network). It carries route templates, statuses and counts, never paths, user names or secrets.

Objects that work outside a request (the upstream session and the token cache, used by fan-out
threads) are given the app's `Metrics` when they are built (`metrics_of(app)`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, Response, current_app, has_app_context
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from ..web.api import Blueprint

METRICS_KEY = "eventory_metrics"
UPSTREAM_ERROR_KINDS = ("timeout", "unreachable", "broken_body")
SIGN_IN_OUTCOMES = ("ok", "rejected", "failed")
# Method and status label values a client cannot inflate: anything else is "other".
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Relayed calls may wait up to the proxy's read timeout (30 s by default).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

blp = Blueprint("metrics", __name__, description="Prometheus metrics (only with BACKEND_METRICS=true).")


class Metrics:
    """One app's collectors, in a registry of its own (tests build many apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["route", "method", "status"]
        self.requests = Counter(
            "eventory_backend_requests",
            "Requests answered, by route template, method and status.",
            labels,
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "eventory_backend_request_duration_seconds",
            "Time to answer a request (until a streamed body starts), by route template, method and status.",
            labels,
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "eventory_backend_upstream_duration_seconds",
            "Time Eventory took to answer a request's headers, failed attempts included.",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "eventory_backend_upstream_errors",
            "Requests to Eventory that failed, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.sign_ins = Counter(
            "eventory_backend_sign_ins",
            "Server-side sign-ins to Eventory with a stored login, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.token_cache_hits = Counter(
            "eventory_backend_token_cache_hits",
            "Brokered calls served with a cached Eventory token.",
            registry=self.registry,
        )
        self.token_cache_misses = Counter(
            "eventory_backend_token_cache_misses",
            "Brokered calls that had to sign in to Eventory first.",
            registry=self.registry,
        )
        # Zeros from the start, so rates and alerts work before the first failure.
        for kind in UPSTREAM_ERROR_KINDS:
            self.upstream_errors.labels(kind)
        for outcome in SIGN_IN_OUTCOMES:
            self.sign_ins.labels(outcome)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method if method in _METHODS else "other", str(status) if 100 <= status <= 599 else "other")
        self.requests.labels(*labels).inc()
        self.request_seconds.labels(*labels).observe(seconds)


def init_app(app: Flask) -> None:
    """The app's metrics, before anything that reports to them is built; None when they are off."""
    app.extensions[METRICS_KEY] = Metrics() if app.config.get("METRICS") else None


def metrics_of(app: Flask) -> Metrics | None:
    return app.extensions.get(METRICS_KEY)


def current_metrics() -> Metrics | None:
    """The current app's metrics; None when they are off or outside an app context."""
    if has_app_context():
        return metrics_of(current_app)
    return None


# The proxy and broker call these. Fan-out workers run without an app context, so the objects
# they use (Upstream, TokenCache) pass the Metrics they were built with.


def observe_upstream(seconds: float, metrics: Metrics | None = None) -> None:
    metrics = metrics or current_metrics()
    if metrics is not None:
        metrics.upstream_seconds.observe(seconds)


def count_upstream_error(kind: str, metrics: Metrics | None = None) -> None:
    metrics = metrics or current_metrics()
    if metrics is not None and kind in UPSTREAM_ERROR_KINDS:
        metrics.upstream_errors.labels(kind).inc()


def count_sign_in(outcome: str, metrics: Metrics | None = None) -> None:
    metrics = metrics or current_metrics()
    if metrics is not None and outcome in SIGN_IN_OUTCOMES:
        metrics.sign_ins.labels(outcome).inc()


def count_token_cache(hit: bool, metrics: Metrics | None = None) -> None:
    metrics = metrics or current_metrics()
    if metrics is not None:
        (metrics.token_cache_hits if hit else metrics.token_cache_misses).inc()


def counts_sign_ins(rejected: type[BaseException]) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Count each call of a sign-in function `(upstream, ...)`: ok, rejected (it raised `rejected`) or failed.

    The metrics come from `upstream.metrics`, so a fan-out worker's sign-ins count too.
    """

    def decorate(sign_in: Callable[..., str]) -> Callable[..., str]:
        @wraps(sign_in)
        def counted(upstream: Any, *args: Any, **kwargs: Any) -> str:
            metrics = getattr(upstream, "metrics", None)
            try:
                token = sign_in(upstream, *args, **kwargs)
            except rejected:
                count_sign_in("rejected", metrics)
                raise
            except Exception:
                count_sign_in("failed", metrics)
                raise
            count_sign_in("ok", metrics)
            return token

        return counted

    return decorate


@blp.get("/metrics", endpoint="metrics")
@blp.response(200, {"type": "string"}, content_type="text/plain", description="Prometheus text exposition format.")
def export_metrics():
    """Request, relay and broker metrics for Prometheus (keep this route private)."""
    registry = current_app.extensions[METRICS_KEY].registry
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
