"""Property-based tests of the API from its own OpenAPI schema (schemathesis): no generated request is a 5xx.

The schema is the one drf-spectacular serves at /api/schema/; requests go to the WSGI app in-process,
as an admin with a user API key and as an admin's browser session. Examples per operation are few, to
keep the run short; what they cover is every operation, every parameter and body shape the schema
allows, and many it does not.
"""

from collections.abc import Iterator

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from agents.keys.services import api_key_create

MAX_EXAMPLES = 5


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Requests to the WSGI handler must not close the connection after each request (the test client
    does the same): the test's transaction must survive the requests it makes."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_world(make_agent, admin_user):
    """An agent (so slugs can hit something), an admin's API key and an admin's session."""
    make_agent("support-bot", allowed_tools=["search", "refund"])
    _, key = api_key_create(user=admin_user, scopes=["api"])
    client = Client()
    client.force_login(admin_user)
    return {"key": key, "session": client.cookies["sessionid"].value}


# The schema /api/schema/ serves, generated in-process (schemathesis' lazy fixture loader does not run on
# pytest 9), tested against Django's WSGI handler.
schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = WSGIHandler()
# Requests outside the schema too (wrong types, out-of-range numbers, NUL in strings): they must be 4xx.
schema.config.generation.update(modes=list(schemathesis.GenerationMode), allow_x00=True)
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.filterwarnings("ignore:Skipped test cases with unsupported payload media types")
@schema.parametrize()
@SETTINGS
def test_no_generated_request_with_an_api_key_is_a_server_error(case, api_world):
    case.call_and_validate(headers={"Authorization": f"Bearer {api_world['key']}"}, checks=[not_a_server_error])


@pytest.mark.filterwarnings("ignore:Skipped test cases with unsupported payload media types")
@schema.include(method="GET").parametrize()
@SETTINGS
def test_no_generated_read_in_a_browser_session_is_a_server_error(case, api_world):
    case.call_and_validate(cookies={"sessionid": api_world["session"]}, checks=[not_a_server_error])
