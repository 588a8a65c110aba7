"""Shared pytest fixtures: real PostgreSQL and Redis, factories for the domain."""

import os
from decimal import Decimal

import pytest

from core.actors import Actor

# Browser tests use live_server from a thread next to Playwright's event loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

TEST_REDIS_DB = 15


@pytest.fixture(autouse=True)
def _redis_test_db(settings):
    """Tests use their own Redis logical database, emptied before each test."""
    from core.redis import get_redis

    settings.FIREBREAK_REDIS_DB = TEST_REDIS_DB
    get_redis.cache_clear()
    client = get_redis()
    client.flushdb()
    yield client
    get_redis.cache_clear()


@pytest.fixture(autouse=True)
def _api_key_cache():
    from agents.selectors import api_key_cache_clear

    api_key_cache_clear()
    yield
    api_key_cache_clear()


@pytest.fixture
def redis_client(_redis_test_db):
    return _redis_test_db


@pytest.fixture
def make_user(db, django_user_model):
    from django.contrib.auth.models import Group

    counter = {"n": 0}

    def make(role: str | None = "responder", username: str | None = None, password: str = "pw-for-tests-1"):  # noqa: S107
        counter["n"] += 1
        user = django_user_model.objects.create_user(
            username=username or f"{role or 'norole'}{counter['n']}", password=password
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def viewer(make_user):
    return make_user("viewer")


@pytest.fixture
def responder(make_user):
    return make_user("responder")


@pytest.fixture
def admin_user(make_user):
    return make_user("admin")


@pytest.fixture
def make_client(client):
    from django.test import Client

    def make(user):
        c = Client()
        c.force_login(user)
        return c

    return make


@pytest.fixture
def make_agent(db):
    from agents.services import agent_register

    counter = {"n": 0}

    def make(slug: str | None = None, **kwargs):
        counter["n"] += 1
        slug = slug or f"agent-{counter['n']}"
        kwargs.setdefault("name", slug.replace("-", " ").title())
        kwargs.setdefault("allowed_tools", ["search", "lookup_order", "send_email"])
        kwargs.setdefault("session_cost_cap", Decimal("5"))
        return agent_register(slug=slug, actor=Actor.system("tests"), **kwargs)

    return make


@pytest.fixture
def make_spans():
    """Build a list of ingest Spans for one trajectory: a root agent span and its steps."""
    from traces.synthetic import trajectory_spans

    return trajectory_spans


@pytest.fixture
def ingest(db):
    from traces.services import trace_ingest

    def run(spans, key_agent=None):
        return trace_ingest(spans=spans, key_agent=key_agent)

    return run


@pytest.fixture
def make_incident(responder):
    """Declare an incident through the real service (SEV3 runaway loop unless told otherwise)."""
    from incidents.services import incident_declare

    def make(**kwargs):
        kwargs.setdefault("title", "Refund agent looping")
        kwargs.setdefault("severity", "SEV3")
        kwargs.setdefault("failure_class", "runaway-loop")
        kwargs.setdefault("agents", [])
        kwargs.setdefault("traces", [])
        kwargs.setdefault("commander", None)
        kwargs.setdefault("summary", "")
        kwargs.setdefault("actor", Actor.person(responder))
        return incident_declare(**kwargs)

    return make
