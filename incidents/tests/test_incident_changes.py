"""The incident's "What changed" card and ``changes`` in GET /api/v1/incidents/<n>: the changes of its
agents in the 24 h before declaration, most recent first, each with its first trace link."""

from datetime import timedelta

import pytest

from agents import fleet
from agents.change_log import ChangeFrozen
from agents.models import ChangeEvent
from core import clock
from core.actors import Actor
from incidents.alerts.services import detector_setting_save
from incidents.models import DetectorSetting


def _change(agent, kind, version, *, hours_ago, trace_id="", source="api"):
    return ChangeEvent.objects.create(
        agent=agent,
        kind=kind,
        version=version,
        actor_label="deploy-bot",
        source=source,
        first_trace_id=trace_id,
        created_at=clock.now() - timedelta(hours=hours_ago),
    )


def test_incident_api_and_page_list_the_changes_before_declaration(make_agent, make_incident, viewer, make_client):
    agent, other = make_agent("refund-agent"), make_agent("other-agent")
    _change(agent, "model", "gpt-4o-2024-11-20", hours_ago=30)  # too old
    _change(agent, "prompt", "v7", hours_ago=5)
    _change(agent, "model", "gpt-4.1", hours_ago=1, trace_id="ab" * 16, source="ingest")
    _change(other, "deploy", "build-9", hours_ago=1)  # not an agent of the incident
    incident = make_incident(agents=[agent])
    _change(agent, "prompt", "v8", hours_ago=-1)  # after declaration
    client = make_client(viewer)

    body = client.get(f"/api/v1/incidents/{incident.number}").json()
    assert [(c["kind"], c["version"]) for c in body["changes"]] == [("model", "gpt-4.1"), ("prompt", "v7")]
    assert body["changes"][0]["first_trace_url"] == f"/traces/{'ab' * 16}/?agent=refund-agent"
    assert body["changes"][0]["source"] == "ingest" and body["changes"][1]["first_trace_url"] is None

    page = client.get(f"/incidents/{incident.number}/").content.decode()
    assert "What changed" in page
    changes = page[page.index("What changed") :]  # not the head: a random token there can hold "v7"
    assert changes.index("gpt-4.1") < changes.index("v7")
    assert f"/traces/{'ab' * 16}/?agent=refund-agent" in page
    assert "build-9" not in page and "gpt-4o-2024-11-20" not in page


def test_no_changes_says_so(make_agent, make_incident, viewer, make_client):
    incident = make_incident(agents=[make_agent("quiet-agent")])
    assert make_client(viewer).get(f"/api/v1/incidents/{incident.number}").json()["changes"] == []
    assert "No changes to these agents" in make_client(viewer).get(f"/incidents/{incident.number}/").content.decode()


def test_detector_settings_are_refused_during_a_freeze(make_agent, admin_user):
    agent = make_agent("refund-agent")
    fleet.change_freeze(actor=Actor.person(admin_user), on=True, reason="INC-3")
    with pytest.raises(ChangeFrozen, match="INC-3"):
        detector_setting_save(
            detector="action_repeat", agent=agent, enabled=False, thresholds={}, rule="", actor=Actor.person(admin_user)
        )
    assert not DetectorSetting.objects.filter(agent=agent).exists()
