import pytest


@pytest.fixture
def traced_agent(make_agent, make_spans, ingest):
    """An agent with one ingested trace (trace id "a" * 32)."""
    agent = make_agent("refund-bot")
    ingest(make_spans(agent="refund-bot", trace_id="a" * 32, steps=[{"kind": "tool", "tool": "search"}]))
    return agent


@pytest.fixture
def make_incident(responder):
    from incidents.services import incident_declare

    def make(**kwargs):
        kwargs.setdefault("title", "Refund agent looping")
        kwargs.setdefault("severity", "SEV3")
        kwargs.setdefault("failure_class", "runaway-loop")
        kwargs.setdefault("agents", [])
        kwargs.setdefault("traces", [])
        kwargs.setdefault("commander", None)
        kwargs.setdefault("summary", "")
        kwargs.setdefault("actor", responder)
        return incident_declare(**kwargs)

    return make
