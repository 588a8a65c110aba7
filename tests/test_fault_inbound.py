"""Inbound alerts while PostgreSQL is down: a 503 with Retry-After (Alertmanager, Grafana and Datadog retry
it), never a 500, and nothing half-written. Real gunicorn on a PostgreSQL of the test's own."""

import os
import time
from pathlib import Path

import httpx
import pytest

from incidents.integrations.inbound.tests.samples import sample
from tests.servers import gunicorn_serving, manage

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(private_postgres):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIREBREAK_GATE_PUBLIC", "DJANGO_ALLOW"))}
    env |= {"DATABASE_URL": private_postgres.url}
    manage(env, "migrate", "--noinput")
    key = manage(env, "createapikey", "--integration", "prometheus-prod").splitlines()[0]
    with gunicorn_serving(env) as url:
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        yield client
        client.close()


def test_an_alert_posted_while_postgresql_is_down_is_a_503_to_retry(app, private_postgres):
    assert app.post("/api/v1/integrations/alertmanager", json=sample("alertmanager")).status_code == 200

    private_postgres.stop()
    down = app.post("/api/v1/integrations/grafana", json=sample("grafana"))
    assert down.status_code == 503, down.text
    assert int(down.headers["Retry-After"]) > 0
    assert "retry" in down.json()["error"]

    private_postgres.restart()
    deadline = time.monotonic() + 30
    while True:
        again = app.post("/api/v1/integrations/grafana", json=sample("grafana"))
        if again.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert again.status_code == 200
    assert [a["action"] for a in again.json()["alerts"]] == ["raised", "raised"]  # nothing was half-written
