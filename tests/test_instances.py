"""Two waitress processes sharing one database server (PostgreSQL, then MariaDB) and one Redis
behave as one service."""

from __future__ import annotations

import pytest
import requests
from cryptography.fernet import Fernet

from . import services
from .helpers import ADA, EVENTORY_LOGIN, start_instance


@pytest.fixture(scope="module", params=["postgres", "mariadb"])
def shared_services(request):
    database = services.DATABASES[request.param]
    try:
        with database() as database_url, services.redis() as redis_url:
            yield database_url, redis_url
    except RuntimeError as error:
        pytest.skip(f"two-instance test needs {request.param} and Redis on this machine: {error}")


@pytest.fixture
def two_instances(tmp_path, shared_services, fake_eventory):
    database_url, redis_url = shared_services
    environment = {
        "BACKEND_DATABASE_URL": database_url,
        "BACKEND_SECRET_KEY": "shared-secret-key-" + "k" * 32,
        "BACKEND_CREDENTIALS_KEYS": Fernet.generate_key().decode(),
        "BACKEND_RATELIMIT_STORAGE_URI": redis_url,
        "BACKEND_RATELIMIT_LOGIN": "5/minute",
        "BACKEND_EVENTORY_URL": fake_eventory.url,
    }
    processes = []
    try:
        # One after the other: the first brings the empty database up to date.
        for name in ("a", "b"):
            process, url = start_instance(tmp_path, name, environment)
            processes.append((process, url))
        yield processes[0][1], processes[1][1]
    finally:
        for process, _url in processes:
            process.terminate()
            process.wait(timeout=15)


def test_two_instances_share_accounts_revocation_limits_and_credentials(two_instances):
    a, b = two_instances
    assert requests.post(a + "/auth/register", json=ADA, timeout=10).status_code == 201

    login = requests.post(b + "/auth/login", data=ADA, timeout=10)
    assert login.status_code == 200
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert requests.get(a + "/auth/me", headers=headers, timeout=10).status_code == 200

    saved = requests.post(a + "/logins", json=EVENTORY_LOGIN, headers=headers, timeout=10).json()
    session = requests.post(f"{b}/logins/{saved['id']}/session", headers=headers, timeout=10)
    assert session.status_code == 200 and session.json()["organisation"] == "Org One"

    assert requests.post(a + "/auth/logout", headers=headers, timeout=10).status_code == 204
    assert requests.get(b + "/auth/me", headers=headers, timeout=10).status_code == 401

    # One login went through b above; four more attempts fill the 5/minute limit across both.
    wrong = {"username": "ada", "password": "not the password at all"}
    statuses = [requests.post(url + "/auth/login", data=wrong, timeout=10).status_code for url in (a, b, a, b, a)]
    assert statuses == [401, 401, 401, 401, 429]
    assert requests.post(b + "/auth/login", data=ADA, timeout=10).status_code == 429
