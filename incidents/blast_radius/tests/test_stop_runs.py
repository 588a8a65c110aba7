"""The blast radius's "stop these runs": the still-running sessions of an agent are blocked at its gate."""

from agents.models import Agent, AuditEntry
from incidents.blast_radius.tests.conftest import PARAMS
from traces.models import Trace

URL = "/incidents/1/blast-radius/"


def test_stop_these_runs_blocks_the_running_sessions(world, make_client, responder, viewer):
    _incident, runs = world
    Trace.objects.filter(pk=runs["r3"].pk).update(session_id="sess-<r3>")
    body = make_client(responder).get(URL, PARAMS, HTTP_HX_REQUEST="true").content.decode()
    assert "Stop these runs (1 session, blocked 1 h)" in body
    assert 'value="sess-&lt;r3&gt;"' in body  # escaped
    assert "Stop these runs" not in make_client(viewer).get(URL, PARAMS, HTTP_HX_REQUEST="true").content.decode()
    form = {"session": ["sess-<r3>"], "ttl_seconds": "3600", "incident": "1", "next": "/incidents/1/"}
    assert make_client(viewer).post("/agents/refunds/sessions/block", form).status_code == 403
    response = make_client(responder).post("/agents/refunds/sessions/block", form)
    assert response.status_code == 302 and response["Location"] == "/incidents/1/"
    blocks = Agent.objects.get(slug="refunds").blocks
    assert [(b["kind"], b["id"]) for b in blocks] == [("session", "sess-<r3>")]
    entry = AuditEntry.objects.get(action="block")
    assert entry.incident_number == 1


def test_stop_these_runs_without_sessions_writes_nothing(world, make_client, responder):
    response = make_client(responder).post(
        "/agents/refunds/sessions/block", {"ttl_seconds": "3600"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 204 and "fb:error" in response["HX-Trigger"]
    assert not AuditEntry.objects.filter(action="block").exists()
