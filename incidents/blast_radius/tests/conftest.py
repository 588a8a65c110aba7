"""Fixtures of the blast radius tests: two agents, several users, runs inside and outside the default window."""

from datetime import UTC, datetime, timedelta

import pytest

from incidents.models import FailureClass, Incident
from traces.models import Trace

DECLARED = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
WINDOW = {"since": DECLARED - timedelta(hours=24), "until": DECLARED + timedelta(hours=2)}


def refund(amount, order="A-1", note=""):
    return {"kind": "tool", "tool": "issue_refund", "args": {"order_id": order, "amount": amount, "note": note}}


@pytest.fixture
def world(db, make_agent, make_spans, ingest):
    """Two agents, several users, runs inside and outside the default window."""
    refunds = make_agent("refunds")
    make_agent("support")
    make_agent("idle")
    runs = {}

    def run(key, agent, user, start, steps, **kw):
        spans = make_spans(agent=agent, user_id=user, start=start, steps=steps, **kw)
        ingest(spans)
        runs[key] = Trace.objects.get(trace_id=spans[0].trace_id)

    t = DECLARED - timedelta(hours=1)
    run("r1", "refunds", "u-alice", t, [{"kind": "llm"}, refund(900, note="VIP override")], model_version="m-2")
    run("r2", "refunds", "u-bob", t + timedelta(minutes=5), [refund(15)], model_version="m-2", prompt_version="p-7")
    run("r3", "refunds", "u-alice", t + timedelta(minutes=10), [refund(900, note="vip OVERRIDE")], status="running")
    run(
        "r4",
        "support",
        '=HYPERLINK("x")',
        t + timedelta(minutes=20),
        [refund(42, order="B-9")],
        status="running",
        input_class="refund_request",
    )
    run(
        "s1",
        "support",
        "u-carol",
        t + timedelta(minutes=30),
        [{"kind": "tool", "tool": "search", "args": {"q": "refund"}}],
        input_class="refund_request",
        prompt_version="p-7",
    )
    # Outside the default window: two days before the declaration.
    run("old", "refunds", "u-dave", DECLARED - timedelta(days=2), [refund(900, note="VIP override")])
    incident = Incident.objects.create(
        number=1,
        title="Refund agent issues large refunds",
        severity="SEV1",
        failure_class=FailureClass.objects.first(),
        declared_at=DECLARED,
    )
    incident.agents.add(refunds)
    incident.traces.add(runs["r1"])
    return incident, runs


PARAMS = {"tool": "issue_refund", "since": "2025-03-09T12:00:00Z", "until": "2025-03-10T14:00:00Z"}
