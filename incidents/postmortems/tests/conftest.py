"""Fixtures of the post-mortem tests: INC-7 (SEV1, declared at DECLARED), its trace and a started post-mortem."""

from datetime import UTC, datetime

import pytest

from core.actors import Actor
from incidents.models import FailureClass, Incident, PostMortemTemplate
from incidents.postmortems import services
from traces.models import Trace

XSS = "<script>alert(1)</script>"
DECLARED = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def incident(db):
    return Incident.objects.create(
        number=7,
        title="Refund agent refunded everyone",
        severity="SEV1",
        failure_class=FailureClass.objects.get(slug="tool-misuse"),
        declared_at=DECLARED,
    )


@pytest.fixture
def sev1_template(db):
    return PostMortemTemplate.objects.get(slug="sev1-agent")


@pytest.fixture
def trace(make_agent, make_spans, ingest, incident):
    make_agent("refund-bot", allowed_tools=["search", "refund"])
    steps = [{"kind": "llm", "output": "thinking"}]
    steps += [{"kind": "tool", "tool": "search", "args": {"q": f"order {i}"}} for i in range(6)]
    steps += [{"kind": "tool", "tool": "refund", "args": {"amount": 500, "note": XSS}, "output": XSS}]
    ingest(make_spans(agent="refund-bot", trace_id="a" * 32, steps=steps))
    trace = Trace.objects.get(trace_id="a" * 32)
    incident.traces.add(trace)
    return trace


@pytest.fixture
def postmortem(incident, sev1_template, responder, trace):
    return services.postmortem_start(incident=incident, template=sev1_template, actor=Actor.person(responder))


def fill(postmortem, actor, text="Written."):
    for section in postmortem.sections:
        services.postmortem_section_save(postmortem=postmortem, key=section["key"], body=text, actor=actor)
