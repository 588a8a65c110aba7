"""Shared pytest fixtures: real PostgreSQL and Redis, factories for the domain.

Each test process (a pytest-xdist worker, or the one process of a serial run) has services of its own:
its test database (pytest-django names it ``<TEST NAME>_gw0``…), and its own Redis — a redis-server
under ``var/test/<worker>/`` with the embedded default, or two logical databases of its own on
REDIS_URL's server (one for the gate's keys, one as the Celery broker). ``_worker_services`` wires
them into the settings, the Celery app and the environment that subprocesses (a Celery worker, an
SDK agent) inherit.
"""

import os
import shutil
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from xdist.scheduler import LoadScopeScheduling

from agents.signing import public_key_text
from core.actors import Actor
from core.redis import redis_url_with_db
from firebreak.settings import celery_broker_url
from tests.servers import PostgresServer, RedisServer, worker_id, worker_index, worker_var_dir

# Browser tests use live_server from a thread next to Playwright's event loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# REDIS_URL as the run was started (the shared server), before _worker_services points it at the worker's.
_SHARED_REDIS_URL = os.environ.get("REDIS_URL", "")


def _redis_dbs() -> tuple[int, int | None]:
    """(gate database, broker database or None for REDIS_URL's own) of this test process.

    A server of the worker's own: the gate in 15, the broker in 0. REDIS_URL's shared server: a serial
    run keeps 15 and REDIS_URL's database; worker N takes 15-2N and 14-2N, so they never meet.
    """
    if not _SHARED_REDIS_URL:
        return 15, 0
    if worker_id() == "main":
        return 15, None
    gate = 15 - 2 * worker_index()
    if gate - 1 < 1:
        raise pytest.UsageError(f"REDIS_URL's 16 databases are too few for worker {worker_id()}: use -n 7 or less")
    return gate, gate - 1


TEST_REDIS_DB, _BROKER_REDIS_DB = _redis_dbs()

# Pub/sub channels are per server, not per logical database: on a shared REDIS_URL server, the modules
# that listen on a gate channel (or publish on one such a module listens to) run as one unit on one
# worker, one after the other (_PubSubTogether). A new module that subscribes belongs here.
PUBSUB_MODULES = (
    "agents/tests/test_gate_services.py",
    "tests/sdk/test_agent_process.py",
    "tests/sdk/test_gate_redis.py",
    "tests/sdk/test_guards.py",
    "tests/sdk/test_llm_gateway.py",  # its gateway process subscribes to the gate channel
    "tests/e2e/test_gate_sdk.py",
    "tests/e2e/test_kill.py",
    "tests/test_gate_incident_rules.py",  # publishes on the channel test_gate_services listens to
)

# Of those, the ones whose tests flush the tables (live_server, transactional_db) besides the browser tests: they
# go in the transactional unit, which runs last, never in one that ordinary tests follow on the same worker.
TRANSACTIONAL_PUBSUB_MODULES = ("tests/sdk/test_llm_gateway.py",)


class _PubSubTogether(LoadScopeScheduling):
    """xdist's load scheduling (each test its own unit), except PUBSUB_MODULES: two units, one for
    the transactional tests (the browser tests and TRANSACTIONAL_PUBSUB_MODULES) and one for the rest.

    Units go out in collection order, where pytest-django puts the transactional (browser) tests
    last: a unit mixing both would flush the tables, and the data the migrations seeded, before
    ordinary tests that follow on the same worker. (``--dist loadgroup`` with xdist_group marks
    would do the grouping, but pytest 9.2 silently ignores the marks: pytest-xdist issue 1386.)
    """

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::")[0]
        if module not in PUBSUB_MODULES:
            return nodeid
        transactional = module.startswith("tests/e2e/") or module in TRANSACTIONAL_PUBSUB_MODULES
        return "redis-pubsub-transactional" if transactional else "redis-pubsub"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if not _SHARED_REDIS_URL:
        return None
    config.option.loadscopereorder = False  # keep collection order (largest units first would break it)
    return _PubSubTogether(config, log)


# A test that starts a server of its own (to stop, kill or restart it) takes seconds: marked slow.
PRIVATE_SERVER_FIXTURES = {"private_redis", "private_postgres"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if PRIVATE_SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _worker_services():
    """Start this process's Redis (embedded default) and point settings, Celery and subprocesses at it."""
    from firebreak.celery import app as celery_app

    server = None
    if _SHARED_REDIS_URL:
        url = _SHARED_REDIS_URL if _BROKER_REDIS_DB is None else redis_url_with_db(_SHARED_REDIS_URL, _BROKER_REDIS_DB)
        if _BROKER_REDIS_DB is not None:  # this worker's own broker database: tasks a killed run left queued
            redis.Redis.from_url(url).flushdb()
    else:
        server = RedisServer.start(worker_var_dir())
        url = server.url
    saved = {name: getattr(django_settings, name) for name in ("REDIS_URL", "CELERY_BROKER_URL", "PASSWORD_HASHERS")}
    saved_env = {name: os.environ.get(name) for name in ("REDIS_URL", "FIREBREAK_REDIS_DB")}
    django_settings.REDIS_URL = url
    django_settings.CELERY_BROKER_URL = celery_broker_url(url)
    # Users are made in most tests: the default PBKDF2 costs ~0.5 s each, MD5 nothing (tests only).
    django_settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    celery_app.conf.broker_url = django_settings.CELERY_BROKER_URL
    os.environ["REDIS_URL"] = url  # a Celery worker or an SDK process started by a test inherits it
    os.environ["FIREBREAK_REDIS_DB"] = str(TEST_REDIS_DB)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(django_settings, name, value)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if server is not None:
            server.stop()
        elif _BROKER_REDIS_DB is not None:  # leave the shared server's databases of this worker empty
            for db in (TEST_REDIS_DB, _BROKER_REDIS_DB):
                redis.Redis.from_url(redis_url_with_db(_SHARED_REDIS_URL, db)).flushdb()


@pytest.fixture(autouse=True)
def _redis_test_db(_worker_services, settings):
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
    from agents.keys.selectors import api_key_cache_clear

    api_key_cache_clear()
    yield
    api_key_cache_clear()


@pytest.fixture
def redis_client(_redis_test_db):
    return _redis_test_db


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own, for a test that stops, kills or restarts it (never the shared ones)."""
    directory = _private_dir("redis")
    server = RedisServer.start(directory)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of the test's own (initdb, ~2 s: mark the test ``slow``), for a test that stops or kills it."""
    server = PostgresServer.start(_private_dir("pg"))
    try:
        yield server
    finally:
        server.remove()


def _private_dir(kind: str) -> Path:
    # Under var/test/<worker>/ rather than /tmp: the wheel runs postgres as its own user (under root), which must reach
    # the data directory, and unix socket paths must stay short.
    return worker_var_dir() / "private" / f"{kind}-{uuid.uuid4().hex[:8]}"


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


@pytest.fixture(autouse=True)
def _gate_public_key(monkeypatch):
    """SDK gates, and the agent processes tests start, verify documents with the server's key (as
    ``createapikey`` tells an agent to): ``Gate`` reads ``FIREBREAK_GATE_PUBLIC_KEY`` from here."""
    monkeypatch.setenv("FIREBREAK_GATE_PUBLIC_KEY", public_key_text())


@pytest.fixture
def reference_data(transactional_db):
    """What the migrations seed (roles, the failure taxonomy and post-mortem templates), put back for a
    transactional test: the flush after each one empties every table. (``serialized_rollback`` would
    reload a snapshot instead, and collides with the content types another flush already recreated.)"""
    from django.apps import apps

    from core.roles import roles_seed
    from incidents.taxonomy import taxonomy_seed

    roles_seed(apps)
    taxonomy_seed(apps)
