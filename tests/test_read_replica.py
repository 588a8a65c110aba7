"""Reads from a read replica (``DATABASE_REPLICA_URL``, core/replica.py): the lists and the viewer read it, every
write and the gate stay on the primary, and a replica that is down never fails a page.

The slow test runs a real streaming hot standby: ``pg_basebackup`` of a primary of the test's own (the embedded
PostgreSQL 18), started read-only, with gunicorn configured exactly as a deployment would be.
"""

import os
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import connections, transaction

from agents.models import Agent
from core.replica import REPLICA, ReplicaRouter, _reading, replica_reset
from tests.servers import PostgresServer, gunicorn_serving, manage
from traces.models import Trace

ROOT = Path(__file__).resolve().parent.parent
AGENT = "replica-bot"
PASSWORD = "replica-test-password-1"  # a test user's


# --- the router, in process --------------------------------------------------------------------------------


@pytest.fixture
def replica_configured(monkeypatch):
    """``settings.DATABASES`` with a ``replica`` alias (the router only asks whether it is there)."""
    monkeypatch.setitem(django_settings.DATABASES, REPLICA, dict(django_settings.DATABASES["default"]))
    return django_settings.DATABASES


def test_reads_go_to_the_replica_only_while_a_read_only_page_runs(replica_configured, transactional_db):
    router = ReplicaRouter()
    assert router.db_for_read(Trace) == "default"
    token = _reading.set(True)
    try:
        assert router.db_for_read(Trace) == REPLICA
        # The gate's state and Django's own tables (sessions, users) are always read from the primary.
        assert router.db_for_read(Agent) == "default"
        assert router.db_for_read(Session) == "default"
        assert router.db_for_read(User) == "default"
        with transaction.atomic():  # a read inside a transaction on the primary stays there
            assert router.db_for_read(Trace) == "default"
    finally:
        _reading.reset(token)


def test_writes_go_to_the_primary_even_for_an_object_read_from_the_replica(replica_configured):
    trace = Trace(trace_id="a" * 32)
    trace._state.db = REPLICA
    token = _reading.set(True)
    try:
        assert ReplicaRouter().db_for_write(Trace, instance=trace) == "default"
    finally:
        _reading.reset(token)
    assert ReplicaRouter().allow_migrate(REPLICA, "traces") is False


def test_without_a_replica_every_read_is_the_primary():
    token = _reading.set(True)
    try:
        assert ReplicaRouter().db_for_read(Trace) == "default"
    finally:
        _reading.reset(token)


@pytest.fixture
def unreachable_replica(replica_configured, transactional_db, tmp_path):
    """A ``replica`` alias whose server does not exist (a socket directory with no server in it).

    Its connection is made once the test's database access is set up and then kept by this thread only
    (Django's test case fences off any alias it finds in the settings); removed before the teardown."""
    broken = {**connections.settings["default"], "HOST": str(tmp_path), "PORT": 5432, "OPTIONS": {}}
    replica_configured[REPLICA] = broken
    connections.settings[REPLICA] = broken
    connections[REPLICA]  # made now, kept in this thread's connections
    del connections.settings[REPLICA]
    replica_reset()
    yield
    connections[REPLICA].close()
    del connections[REPLICA]
    replica_reset()


def test_a_list_answers_from_the_primary_when_the_replica_cannot_be_reached(
    unreachable_replica, reference_data, make_agent, make_spans, ingest, viewer, make_client
):
    # Committed data and no test transaction around the request (inside one, every read is the primary's).
    agent = make_agent(AGENT)
    ingest(make_spans(agent=agent.slug, trace_id="c" * 32, steps=[{"kind": "tool", "tool": "search"}]), key_agent=agent)
    client = make_client(viewer)
    for url in ("/traces/", f"/traces/{'c' * 32}/?agent={AGENT}", "/incidents/", "/incidents/alerts/", "/"):
        response = client.get(url)
        assert response.status_code == 200, url
    assert f"/traces/{'c' * 32}/" in client.get("/traces/").content.decode()


# --- a real hot standby, with gunicorn as deployed ---------------------------------------------------------


def _sql(server: PostgresServer, query: str) -> object:
    with psycopg.connect(
        host=server.info.socket_dir, port=server.info.port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        row = conn.execute(query).fetchone()
        return row[0] if row else None


def _caught_up(primary: PostgresServer, standby: PostgresServer) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    lsn = _sql(primary, "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + 30
    while not _sql(standby, f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"):
        assert time.monotonic() < deadline, "the standby did not catch up"
        time.sleep(0.05)


def _batch(trace: int) -> dict:
    trace_id = f"{trace:032x}"
    return {
        "spans": [
            {
                "trace_id": trace_id,
                "span_id": f"{trace:08x}{i:08x}",
                "parent_span_id": None if i == 0 else f"{trace:08x}{0:08x}",
                "name": "agent" if i == 0 else f"step {i}",
                "kind": "agent" if i == 0 else "tool",
                "tool_name": "" if i == 0 else "lookup_order",
                "start_time": f"2026-11-20T10:00:{i:02d}+00:00",
                "end_time": f"2026-11-20T10:00:{i:02d}.5+00:00",
            }
            for i in range(3)
        ]
    }


@pytest.fixture
def replicated(private_postgres, tmp_path):
    """gunicorn on a primary of its own with ``DATABASE_REPLICA_URL`` naming its streaming hot standby;
    yields (an agent's API client, a person's logged-in page client, the primary, the standby)."""
    primary = private_postgres
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIREBREAK_GATE_PUBLIC", "DJANGO_ALLOW"))}
    env |= {"DATABASE_URL": primary.url, "FIREBREAK_SPOOL_DIR": str(tmp_path / "spool")}
    manage(env, "migrate", "--noinput")
    key = manage(env, "createapikey", "--agent", AGENT, "--scopes", "ingest,gate").splitlines()[0]
    manage(
        {**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        *("createsuperuser", "--noinput", "--username", "reader", "--email", "reader@example.com"),
    )
    person_key = manage(env, "createapikey", "--user", "reader").splitlines()[0]
    standby = primary.standby(private_postgres.directory.with_name(private_postgres.directory.name + "-standby"))
    assert _sql(standby, "SELECT pg_is_in_recovery()") is True
    env["DATABASE_REPLICA_URL"] = standby.url
    try:
        with gunicorn_serving({**env, "FIREBREAK_PROCESS": "web"}) as url:
            agent = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
            person = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {person_key}"}, timeout=10)
            pages = httpx.Client(base_url=url, timeout=10)
            pages.get("/accounts/login/")
            login = pages.post(
                "/accounts/login/",
                data={"username": "reader", "password": PASSWORD, "csrfmiddlewaretoken": pages.cookies["csrftoken"]},
            )
            assert login.status_code == 302, login.text[:500]
            yield agent, person, pages, primary, standby
            for client in (agent, person, pages):
                client.close()
    finally:
        standby.remove()


@pytest.mark.slow
def test_lists_and_viewer_read_the_standby_writes_the_primary_and_a_stopped_standby_fails_no_page(replicated):
    agent, person, pages, primary, standby = replicated
    assert agent.post("/api/v1/ingest", json=_batch(1)).json()["stored"] == 3
    _caught_up(primary, standby)
    assert f"/traces/{1:032x}/" in pages.get("/traces/").text

    # Replay paused: what the primary takes now, the standby does not have yet.
    _sql(standby, "SELECT pg_wal_replay_pause()")
    assert agent.post("/api/v1/ingest", json=_batch(2)).json()["stored"] == 3  # ingest writes the primary
    assert _sql(primary, "SELECT count(*) FROM traces_trace") == 2
    listed = pages.get("/traces/")
    assert listed.status_code == 200
    assert f"/traces/{1:032x}/" in listed.text and f"/traces/{2:032x}/" not in listed.text  # read from the standby
    assert pages.get(f"/traces/{2:032x}/?agent={AGENT}").status_code == 404  # so is the viewer
    # The kill is written to the primary and the gate read from it, whatever the standby lags.
    assert person.post(f"/api/v1/agents/{AGENT}/kill", json={"reason": "replica test"}).status_code == 200
    assert agent.get(f"/api/v1/agents/{AGENT}/gate").json()["state"] == "killed"
    assert _sql(primary, f"SELECT state FROM agents_agent WHERE slug = '{AGENT}'") == "killed"

    _sql(standby, "SELECT pg_wal_replay_resume()")
    _caught_up(primary, standby)
    assert f"/traces/{2:032x}/" in pages.get("/traces/").text

    # The standby stops: every page still answers, from the primary.
    _sql(standby, "SELECT pg_wal_replay_pause()")
    assert agent.post("/api/v1/ingest", json=_batch(3)).json()["stored"] == 3
    standby.stop()
    listed = pages.get("/traces/")
    assert listed.status_code == 200 and f"/traces/{3:032x}/" in listed.text
    for url in (f"/traces/{3:032x}/?agent={AGENT}", "/incidents/", "/incidents/alerts/", "/"):
        assert pages.get(url).status_code == 200, url
