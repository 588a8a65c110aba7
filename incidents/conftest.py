"""Fixtures shared by the tests of incidents and of its sub-packages."""

import pytest

from incidents.models import Alert
from traces.models import Trace

TRACE = "a" * 32  # the trace traced_agent ingests
SPAN = "b" * 16  # the step make_alert points at


@pytest.fixture
def traced_agent(make_agent, make_spans, ingest):
    """An agent ("refund-bot") with one ingested trace (trace id TRACE)."""
    agent = make_agent("refund-bot")
    ingest(make_spans(agent="refund-bot", trace_id=TRACE, steps=[{"kind": "tool", "tool": "search"}]))
    return agent


@pytest.fixture
def make_alert(traced_agent):
    """Alerts on traced_agent's trace, written directly: tests need any status and last_seen."""
    counter = {"n": 0}

    def make(**kwargs):
        counter["n"] += 1
        kwargs.setdefault("detector", "loop")
        kwargs.setdefault("agent", traced_agent)
        kwargs.setdefault("trace", Trace.objects.get(trace_id=TRACE))
        kwargs.setdefault("span_id", SPAN)
        kwargs.setdefault("fingerprint", f"fp-{counter['n']}")
        kwargs.setdefault("title", f"Alert {counter['n']}")
        return Alert.objects.create(**kwargs)

    return make
