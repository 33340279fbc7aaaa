"""`GET /healthz` (the process answers) and `GET /readyz` (its database answers), for load
balancers and orchestrators: unauthenticated, cheap, and outside every rate limit
(`UNLIMITED_ENDPOINTS`)."""

from __future__ import annotations

import logging

import marshmallow as ma
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..errors import error_response
from ..extensions import db
from ..web.api import Blueprint, ErrorSchema

log = logging.getLogger("eventory_backend")

READY_RETRY_AFTER = 5

blp = Blueprint("observability", __name__, description="Health checks for load balancers and orchestrators.")

# The endpoints no rate limit may touch: every limit is a route's own decorator (ratelimit/), and
# these carry none, so a load balancer's probes never spend or meet a budget.
UNLIMITED_ENDPOINTS = frozenset({"observability.healthz", "observability.readyz", "metrics.metrics"})


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"description": "Always `ok`.", "example": "ok"})


class ReadinessSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"description": "Always `ready`.", "example": "ready"})


@blp.get("/healthz")
@blp.response(200, HealthSchema, description="The process is alive.")
def healthz():
    """Liveness: the process answers (no database or network call)."""
    return {"status": "ok"}


@blp.get("/readyz")
@blp.response(200, ReadinessSchema, description="The database answers: this instance can serve.")
@blp.alt_response(
    503,
    schema=ErrorSchema,
    description="The database is not reachable.",
    headers={"Retry-After": {"description": "Seconds to wait before asking again.", "schema": {"type": "integer"}}},
)
def readyz():
    """Readiness: the database answers a SELECT 1."""
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        # The driver's message may name hosts and users; the type is enough to act on.
        log.warning("readiness check failed: database error=%s", type(error).__name__)
        return error_response(503, "The database is not reachable.", {"Retry-After": str(READY_RETRY_AFTER)})
    return {"status": "ready"}
