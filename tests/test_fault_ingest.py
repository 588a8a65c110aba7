"""Ingest keeps what it acknowledged while PostgreSQL is down: real gunicorn, a real PostgreSQL of the test's own,
stopped and started again; spans sent meanwhile are spooled on disk and stored, in order, once it is back."""

import os
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.servers import PostgresServer, gunicorn_serving, manage
from traces.tests.otel_helpers import genai_agent_run, otlp_json, record

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
AGENT = "spool-bot"


SECRET = "sk-proj-Zq81mXvP0aLr5tYwE3nB7cKd"


def batch(trace: int, n: int = 5) -> dict:
    """A native batch: one run of ``n`` spans (one tool call carries an API key in its arguments)."""
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
                "tool_arguments": {} if i == 0 else {"order": i, "note": f"retry with {SECRET}" if i == 1 else ""},
                "start_time": f"2026-11-20T10:00:{i:02d}+00:00",
                "end_time": f"2026-11-20T10:00:{i:02d}.5+00:00",
            }
            for i in range(n)
        ]
    }


def stored_spans(server: PostgresServer) -> int:
    with psycopg.connect(host=server.info.socket_dir, port=server.info.port, user="postgres", dbname="postgres") as c:
        row = c.execute("SELECT count(*) FROM traces_step").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def app(private_postgres, tmp_path):
    """gunicorn serving Firebreak on the test's own PostgreSQL (migrated), with an agent key and its spool."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIREBREAK_GATE_PUBLIC", "DJANGO_ALLOW"))}
    env |= {
        "DATABASE_URL": private_postgres.url,
        "FIREBREAK_SPOOL_DIR": str(tmp_path / "spool"),
        "FIREBREAK_SPOOL_MAX_BYTES": str(30_000),  # room for a few batches: then the spool is full
    }
    manage(env, "migrate", "--noinput")
    key = manage(env, "createapikey", "--agent", AGENT, "--scopes", "ingest").splitlines()[0]
    manage(env, "bootstrap")
    person_key = manage(env, "createapikey", "--user", "admin").splitlines()[0]
    with gunicorn_serving(env) as url:
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        client.person_key = person_key
        yield client, tmp_path / "spool"
        client.close()


def test_spans_sent_while_postgresql_is_down_are_spooled_and_stored_when_it_is_back(app, private_postgres):
    client, spool = app
    assert client.post("/api/v1/ingest", json=batch(1)).json()["stored"] == 5
    assert stored_spans(private_postgres) == 5

    private_postgres.stop()
    answers = [client.post("/api/v1/ingest", json=batch(trace)) for trace in (2, 3)]
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.json()["spooled"] for a in answers] == [5, 5]
    assert len(list(spool.glob("*.batch"))) == 2
    assert not [f for f in spool.glob("*.batch") if SECRET.encode() in f.read_bytes()]  # scrubbed before the disk
    bad = client.post("/api/v1/ingest", json={"spans": [{"trace_id": "nope"}]})
    assert bad.status_code == 400 and "trace_id" in bad.json()["error"]  # still checked, never spooled

    # The spool holds 30,000 bytes: once full, the answer is a 503 the exporter retries, nothing is kept.
    while True:
        answer = client.post("/api/v1/ingest", json=batch(100 + len(list(spool.glob("*.batch")))))
        if answer.status_code != 200:
            break
    assert answer.status_code == 503 and int(answer.headers["Retry-After"]) > 0
    assert "spool is full" in answer.json()["error"]
    kept = len(list(spool.glob("*.batch")))

    private_postgres.restart()
    deadline = time.monotonic() + 30
    while list(spool.glob("*.batch")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not list(spool.glob("*.batch")), "the spool was not drained"
    assert stored_spans(private_postgres) == 5 + kept * 5
    with psycopg.connect(
        host=private_postgres.info.socket_dir, port=private_postgres.info.port, user="postgres", dbname="postgres"
    ) as c:
        arguments = [
            row[0] for row in c.execute("SELECT tool_arguments::text FROM traces_step WHERE tool_arguments ? 'note'")
        ]
    assert len(arguments) == 4 * (1 + kept) and not [a for a in arguments if SECRET in a]
    assert client.post("/api/v1/ingest", json=batch(4)).json()["stored"] == 5  # and live again


def test_otlp_spans_are_spooled_too_and_pages_answer_503_not_500(app, private_postgres):
    client, spool = app
    body = otlp_json(record(genai_agent_run, service_name=AGENT))
    private_postgres.stop()
    answer = client.post("/v1/traces", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200
    assert len(list(spool.glob("*.batch"))) == 1
    page = client.get("/incidents/", headers={"Authorization": ""})
    assert page.status_code in (302, 503)  # the login redirect needs no database; anything past it answers 503
    api = client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {client.person_key}"})
    assert api.status_code == 503 and api.headers["Retry-After"] and "error" in api.json()
    private_postgres.restart()
    deadline = time.monotonic() + 30
    while list(spool.glob("*.batch")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stored_spans(private_postgres) > 0
