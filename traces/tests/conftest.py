"""Fixtures of the trace tests: an agent, trajectories ingested through the real service, clients by role."""

from datetime import UTC, datetime

import pytest

from traces.models import Trace

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def agent(make_agent):
    return make_agent("support-bot", allowed_tools=["search", "lookup_order", "refund", "send_email"])


@pytest.fixture
def trace_of(agent, make_spans, ingest):
    """Ingest one trajectory of ``steps`` and return its Trace."""
    counter = {"n": 0}

    def make(steps, **kwargs) -> Trace:
        counter["n"] += 1
        kwargs.setdefault("trace_id", f"{counter['n']:032x}")
        kwargs.setdefault("start", T0)
        spans = make_spans(agent="support-bot", steps=steps, **kwargs)
        ingest(spans)
        return Trace.objects.get(trace_id=kwargs["trace_id"])

    return make


@pytest.fixture
def viewer_client(viewer, make_client):
    return make_client(viewer)


@pytest.fixture
def responder_client(responder, make_client):
    return make_client(responder)
