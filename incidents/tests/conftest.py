import pytest


@pytest.fixture
def traced_agent(make_agent, make_spans, ingest):
    """An agent with one ingested trace (trace id "a" * 32)."""
    agent = make_agent("refund-bot")
    ingest(make_spans(agent="refund-bot", trace_id="a" * 32, steps=[{"kind": "tool", "tool": "search"}]))
    return agent
