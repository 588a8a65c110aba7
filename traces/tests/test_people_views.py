"""/traces/sessions/<id>/ and /traces/users/<id>/: the right runs in order, totals, empty pages, escaping."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from traces.models import Trace

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"
T0 = timezone.now() - timedelta(hours=1)


@pytest.fixture
def make_trace(make_agent):
    agents = {}
    counter = {"n": 0}

    def make(agent="people-bot", **kwargs):
        counter["n"] += 1
        if agent not in agents:
            agents[agent] = make_agent(agent)
        kwargs.setdefault("trace_id", f"{counter['n']:032x}")
        kwargs.setdefault("started_at", T0)
        return Trace.objects.create(agent=agents[agent], **kwargs)

    return make


def trace_ids(body: str) -> list[str]:
    return re.findall(r'title="([0-9a-f]{32})"', body)


def test_session_lists_its_runs_oldest_first_with_totals(viewer, make_client, make_trace):
    late = make_trace(
        session_id="s-1", started_at=T0 + timedelta(minutes=5), cost=Decimal("0.5"), tokens_in=10, step_count=3
    )
    early = make_trace(
        session_id="s-1",
        agent="helper-bot",
        started_at=T0,
        cost=Decimal("0.25"),
        tokens_in=5,
        step_count=2,
        status="error",
    )
    make_trace(session_id="s-2")
    body = make_client(viewer).get("/traces/sessions/s-1/").content.decode()
    assert trace_ids(body) == [early.trace_id, late.trace_id]
    assert "helper-bot" in body and "people-bot" in body
    assert "1 failed or killed" in body


def test_user_lists_runs_across_sessions_newest_first(viewer, make_client, make_trace):
    a = make_trace(user_id="u-1", session_id="s-a", started_at=T0)
    b = make_trace(user_id="u-1", session_id="s-b", agent="other-bot", started_at=T0 + timedelta(minutes=1))
    make_trace(user_id="u-2")
    body = make_client(viewer).get("/traces/users/u-1/").content.decode()
    assert trace_ids(body) == [b.trace_id, a.trace_id]
    assert "/traces/sessions/s-a/" in body and "/traces/sessions/s-b/" in body


def test_unknown_session_and_user_are_empty_pages_not_404(viewer, make_client):
    c = make_client(viewer)
    s = c.get("/traces/sessions/nope/")
    u = c.get("/traces/users/nope/")
    assert s.status_code == 200 and "No runs in this session" in s.content.decode()
    assert u.status_code == 200 and "No runs for this user" in u.content.decode()


def test_ids_with_markup_and_slashes_are_escaped(viewer, make_client, make_trace):
    make_trace(session_id=f"a/{XSS}", user_id=XSS)
    c = make_client(viewer)
    for url in (
        "/traces/sessions/a/%3Cscript%3Ealert(1)%3C/script%3E/",
        "/traces/users/%3Cscript%3Ealert(1)%3C/script%3E/",
    ):
        body = c.get(url).content.decode()
        assert XSS not in body, url
        assert "&lt;script&gt;" in body


def test_session_pages_by_keyset(viewer, make_client, make_trace, monkeypatch):
    from traces.selectors import people

    monkeypatch.setattr(people, "PAGE", 2)
    ids = [make_trace(session_id="s-p", started_at=T0 + timedelta(seconds=i)).trace_id for i in range(3)]
    c = make_client(viewer)
    body = c.get("/traces/sessions/s-p/").content.decode()
    assert trace_ids(body) == ids[:2]
    next_link = re.search(r'href="(/traces/sessions/s-p/\?cursor=[^"]+)"', body).group(1)
    assert trace_ids(c.get(next_link.replace("&amp;", "&")).content.decode()) == ids[2:]


def test_trace_list_and_viewer_link_sessions_and_users(viewer, make_client, make_trace):
    trace = make_trace(session_id="s-link", user_id="u-link")
    c = make_client(viewer)
    listing = c.get("/traces/").content.decode()
    assert "/traces/sessions/s-link/" in listing and "/traces/users/u-link/" in listing
    detail = c.get(trace.get_absolute_url()).content.decode()
    assert "/traces/sessions/s-link/" in detail and "/traces/users/u-link/" in detail
