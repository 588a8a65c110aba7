"""The ``firebreak`` command, run as installed (a subprocess of the real entry point) against a live
Firebreak (``live_server``) with a person's real API key."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.apps import apps

from agents.keys.services import api_key_create
from agents.models import Agent, AuditAction, AuditEntry, GateState
from core.roles import roles_seed
from incidents.models import Alert, Incident
from incidents.taxonomy import taxonomy_seed

FIREBREAK = shutil.which("firebreak", path=str(Path(sys.executable).parent)) or "firebreak"


@pytest.fixture(autouse=True)
def _reference_data(transactional_db):
    """live_server needs committed data; each test's tables are flushed afterwards, seeded rows with them."""
    roles_seed(apps)
    taxonomy_seed(apps)


def run(*args: str, url: str, key: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FIREBREAK_URL": url, "FIREBREAK_API_KEY": key}
    return subprocess.run([FIREBREAK, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def key_of(user) -> str:
    _, raw = api_key_create(user=user, scopes=["api"])
    return raw


def test_kill_stops_the_agent_and_leaves_an_audit_row(live_server, make_user, make_agent):
    make_agent("refund-bot")
    responder = make_user("responder")
    result = run("kill", "refund-bot", "--reason", "refunding everyone", url=live_server.url, key=key_of(responder))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "refund-bot: killed (refunding everyone)"
    agent = Agent.objects.get(slug="refund-bot")
    assert agent.state == GateState.KILLED
    audit = AuditEntry.objects.get(agent=agent, action=AuditAction.KILL)
    assert audit.actor == responder and audit.reason == "refunding everyone"


def test_a_viewer_s_key_is_refused_in_plain_words(live_server, make_user, make_agent):
    make_agent("refund-bot")
    result = run("kill", "refund-bot", url=live_server.url, key=key_of(make_user("viewer")))
    assert result.returncode == 1
    assert result.stderr.strip() == "firebreak: not allowed: this needs the responder role"
    assert Agent.objects.get(slug="refund-bot").state == GateState.ACTIVE


def test_a_bad_key_an_unknown_agent_and_a_conflict_read_as_sentences(live_server, make_user, make_agent):
    make_agent("refund-bot")
    key = key_of(make_user("responder"))
    refused = run("status", url=live_server.url, key="fbk_nope_nope")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "firebreak: the API key was refused: check FIREBREAK_API_KEY"
    unknown = run("pause", "ghost-bot", url=live_server.url, key=key)
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "firebreak: no agent named ghost-bot")
    assert run("kill", "refund-bot", url=live_server.url, key=key).returncode == 0
    pause = run("pause", "refund-bot", url=live_server.url, key=key)
    assert pause.returncode == 1 and "killed" in pause.stderr


def test_resume_needs_a_reason_and_bad_usage_exits_2(live_server, make_user, make_agent):
    make_agent("refund-bot")
    key = key_of(make_user("responder"))
    result = run("resume", "refund-bot", url=live_server.url, key=key)
    assert result.returncode == 2 and "--reason" in result.stderr
    assert run("declare", "x", "--severity", "SEV9", url=live_server.url, key=key).returncode == 2
    unset = run("status", url=live_server.url, key="")
    assert unset.returncode == 2 and "FIREBREAK_API_KEY" in unset.stderr


def test_an_unreachable_url_exits_3_naming_it():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}"
    result = run("status", url=url, key="fbk_x_y")
    assert result.returncode == 3
    assert result.stderr.startswith(f"firebreak: cannot reach FIREBREAK_URL={url}")


class _Unavailable(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"error": "the database is unavailable"}'
        self.send_response(503)
        self.send_header("Retry-After", "7")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def unavailable_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_503_says_when_to_retry_and_exits_3(unavailable_server):
    result = run("alerts", url=unavailable_server, key="fbk_x_y")
    assert result.returncode == 3
    assert result.stderr.strip() == "firebreak: Firebreak is unavailable, retry in 7 s"


def test_declare_then_status_incidents_and_alerts_as_tables_and_json(live_server, make_user, make_agent):
    agent = make_agent("refund-bot")
    key = key_of(make_user("responder"))
    Alert.objects.create(detector="loop", agent=agent, fingerprint="fp-1", title="Loop on search")
    declared = run(
        "declare", "--severity", "SEV2", "Refunds looping", "--agent", "refund-bot", "--class", "runaway-loop",
        url=live_server.url, key=key,
    )  # fmt: skip
    assert declared.returncode == 0, declared.stderr
    assert declared.stdout.startswith("INC-1 declared (SEV2): Refunds looping")
    incident = Incident.objects.get(number=1)
    assert list(incident.agents.values_list("slug", flat=True)) == ["refund-bot"]

    status = run("status", url=live_server.url, key=key)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert "Agents (1)" in lines and "Open incidents (1)" in lines and "Open alerts (1)" in lines
    header = next(line for line in lines if line.startswith("AGENT"))
    row = next(line for line in lines if line.startswith("refund-bot"))
    assert header.index("GATE") == row.index("active")  # an aligned table

    as_json = json.loads(run("status", "--json", url=live_server.url, key=key).stdout)
    assert [a["slug"] for a in as_json["agents"]] == ["refund-bot"]
    assert [i["ref"] for i in as_json["incidents"]] == ["INC-1"]
    alerts = json.loads(run("alerts", "--agent", "refund-bot", "--json", url=live_server.url, key=key).stdout)
    assert [a["title"] for a in alerts] == ["Loop on search"]
    incidents = json.loads(run("--json", "incidents", "--open", url=live_server.url, key=key).stdout)
    assert [i["number"] for i in incidents] == [1]
    table = run("incidents", url=live_server.url, key=key).stdout
    assert table.splitlines()[0].split() == ["INCIDENT", "SEV", "STATUS", "COMMANDER", "DECLARED", "TITLE"]


def test_lists_follow_every_page(live_server, make_user, make_agent):
    agent = make_agent("refund-bot")
    Alert.objects.bulk_create(
        Alert(detector="loop", agent=agent, fingerprint=f"fp-{i}", title=f"Loop {i}") for i in range(205)
    )
    alerts = json.loads(run("alerts", "--json", url=live_server.url, key=key_of(make_user("viewer"))).stdout)
    assert len(alerts) == 205 and len({a["id"] for a in alerts}) == 205
    assert alerts[0]["title"] == "Loop 204"  # newest first
