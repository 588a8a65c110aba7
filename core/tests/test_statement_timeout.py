"""Web requests never hold PostgreSQL past the statement timeout, and a stopped query is a clear 503."""

import json
import os
import subprocess
import sys

import pytest
from django.db import OperationalError, connection, transaction
from django.test import RequestFactory

from core.views import server_error


def database_options(extra_env: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k != "FIREBREAK_PROCESS"} | extra_env
    code = "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default'])"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_web_processes_get_the_statement_timeout_and_others_do_not():
    assert "statement_timeout=30000" in database_options({"FIREBREAK_PROCESS": "web"})
    assert "statement_timeout=1500" in database_options(
        {"FIREBREAK_PROCESS": "web", "FIREBREAK_WEB_STATEMENT_TIMEOUT_MS": "1500"}
    )
    assert "statement_timeout" not in database_options({})  # worker, beat, manage.py


@pytest.mark.django_db
def test_a_query_stopped_by_the_timeout_is_a_503_that_says_so(settings):
    settings.FIREBREAK_WEB_STATEMENT_TIMEOUT_MS = 50
    request = RequestFactory().get("/api/v1/incidents/1/blast-radius")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 50")
            cursor.execute("SELECT pg_sleep(2)")
    except OperationalError:
        response = server_error(request)
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "statement timeout" in json.loads(response.content)["error"]
