"""Schemathesis against the app's own /openapi.json, in-process, authenticated, bounded.

Run by .ci/run (`python -m pytest -m fuzz`); the README's test command leaves it out for speed.
"""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .helpers import EVENTORY_LOGIN

pytestmark = pytest.mark.fuzz

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 40
_accounts = itertools.count()


def fresh_account(client) -> dict:
    """Each example gets its own account and a saved login: logout or deletion in one cannot starve the next."""
    account = {"username": f"fuzz-{next(_accounts)}", "password": "fuzzing passphrase long enough"}
    client.post("/auth/register", json=account)
    token = client.post("/auth/login", data=account).json["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    client.post("/logins", json=EVENTORY_LOGIN, headers=headers)
    return headers


def test_every_operation_keeps_its_documented_promises(app):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    client = app.test_client()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    failures = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def run(case):
            case.call_and_validate(headers=fresh_account(client), checks=CHECKS)

        try:
            run()
        except Exception as error:  # noqa: BLE001 - collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
