"""The rules incidents adds to the gate: agents exposes the hooks and the signal, incidents fills them.

Here, above both apps, because agents must not import incidents (the layers in pyproject.toml).
"""

import pytest
from django.core.exceptions import PermissionDenied

from agents import services
from agents.models import Agent
from core.actors import Actor
from incidents.models import FailureClass, Incident, TimelineEntry


@pytest.fixture
def publish(django_capture_on_commit_callbacks):
    """Run the on-commit work (write-through, signals) as a real commit would."""

    def run(fn, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(**kwargs)

    return run


def test_resuming_an_agent_on_an_open_sev1_needs_an_admin(make_agent, responder, admin_user):
    agent = make_agent()
    incident = Incident.objects.create(number=1, title="x", severity="SEV1", failure_class=FailureClass.objects.first())
    incident.agents.add(agent)
    services.agent_kill(agent=agent, actor=Actor.person(responder))
    with pytest.raises(PermissionDenied, match="INC-1"):
        services.agent_resume(agent=agent, actor=Actor.person(responder), reason="fixed")
    assert Agent.objects.get(pk=agent.pk).state == "killed"
    services.agent_resume(agent=agent, actor=Actor.person(admin_user), reason="fixed, verified on canaries")
    assert Agent.objects.get(pk=agent.pk).state == "active"


def test_closed_sev1_does_not_block_a_responder(make_agent, responder):
    agent = make_agent()
    incident = Incident.objects.create(
        number=2, title="x", severity="SEV1", status="closed", failure_class=FailureClass.objects.first()
    )
    incident.agents.add(agent)
    services.agent_pause(agent=agent, actor=Actor.person(responder))
    services.agent_resume(agent=agent, actor=Actor.person(responder), reason="incident closed")
    assert Agent.objects.get(pk=agent.pk).state == "active"


def test_gate_changes_go_on_the_timeline_of_open_incidents(make_agent, responder, publish):
    agent = make_agent("refunds")
    fc = FailureClass.objects.first()
    open_incident = Incident.objects.create(number=5, title="loop", severity="SEV2", failure_class=fc)
    closed = Incident.objects.create(number=6, title="old", severity="SEV2", failure_class=fc, status="closed")
    open_incident.agents.add(agent)
    closed.agents.add(agent)
    publish(services.agent_pause, agent=agent, actor=Actor.person(responder), reason="<b>loop</b>")
    (entry,) = TimelineEntry.objects.filter(kind="gate")
    assert entry.incident == open_incident
    assert "refunds" in entry.body and responder.username in entry.body
