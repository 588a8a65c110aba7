"""With PostgreSQL down, the API's reads and writes answer 503 with Retry-After (never 500), and the
``firebreak`` command says so in plain words: real gunicorn, a PostgreSQL of the test's own, stopped."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.servers import gunicorn_serving, manage

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
FIREBREAK = shutil.which("firebreak", path=str(Path(sys.executable).parent)) or "firebreak"


@pytest.fixture
def app(private_postgres):
    """gunicorn serving Firebreak on the test's own PostgreSQL (migrated), and an admin's key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIREBREAK_GATE_PUBLIC", "DJANGO_ALLOW"))}
    env["DATABASE_URL"] = private_postgres.url
    manage(env, "migrate", "--noinput")
    manage(env, "bootstrap")
    key = manage(env, "createapikey", "--user", "admin").splitlines()[0]
    with gunicorn_serving(env) as url:
        yield url, key


def test_with_postgresql_down_the_api_is_503_with_retry_after_and_the_cli_says_when(app, private_postgres):
    url, key = app
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert client.get("/api/v1/alerts").status_code == 200
    private_postgres.stop()
    for method, path, body in [
        ("GET", "/api/v1/alerts", None),
        ("GET", "/api/v1/incidents?open=true", None),
        ("GET", "/api/v1/traces", None),
        ("GET", "/api/v1/keys", None),
        ("POST", "/api/v1/alerts/1/acknowledge", {}),
        ("POST", "/api/v1/incidents/1/notes", {"body": "still there?"}),
    ]:
        response = client.request(method, path, json=body)
        assert response.status_code == 503, (path, response.status_code)
        assert int(response.headers["Retry-After"]) > 0, path
    env = {**os.environ, "FIREBREAK_URL": url, "FIREBREAK_API_KEY": key}
    result = subprocess.run([FIREBREAK, "alerts"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 3
    assert result.stderr.startswith("firebreak: Firebreak is unavailable, retry in ")
