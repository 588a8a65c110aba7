"""The read-only pages: login required, 200 with data, 404 for unknown ids, untrusted text escaped, trace filters."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from incidents.models import FailureClass, Incident, PostMortem, PostMortemTemplate, TimelineEntry
from traces.models import Trace

XSS = "<script>alert(1)</script>"


@pytest.fixture
def data(make_agent, make_spans, ingest):
    """Two agents, three traces (one with hostile output and a length cut-off), one incident."""
    support = make_agent("support-bot", allowed_tools=["search", "refund"], high_risk_tools=["refund"])
    billing = make_agent("billing-bot")
    now = datetime.now(UTC)
    ok = make_spans(
        agent="support-bot",
        trace_id="a" * 32,
        start=now - timedelta(minutes=5),
        user_id="user-1",
        model_version="gpt-x-1",
        prompt_version="p7",
        root_input="Where is my order?",
        steps=[
            {
                "kind": "llm",
                "output": XSS,
                "tokens_in": 120,
                "tokens_out": 40,
                "cost": 0.0021,
                "finish_reason": "length",
            },
            {"kind": "tool", "tool": "refund", "args": {"amount": 10, "note": XSS}, "output": "done"},
        ],
    )
    failed = make_spans(
        agent="support-bot",
        trace_id="b" * 32,
        start=now - timedelta(minutes=3),
        user_id="user-2",
        status="error",
        steps=[{"kind": "tool", "tool": "search", "status": "error", "error": "HTTP 500 " + XSS}],
    )
    other = make_spans(
        agent="billing-bot",
        trace_id="c" * 32,
        start=now - timedelta(minutes=1),
        steps=[{"kind": "llm", "output": "fine"}],
    )
    ingest(ok + failed + other)
    fc = FailureClass.objects.first()
    incident = Incident.objects.create(number=7, title=f"Refunds {XSS}", severity="SEV1", failure_class=fc)
    incident.agents.add(support)
    incident.traces.add(Trace.objects.get(trace_id="a" * 32))
    TimelineEntry.objects.create(incident=incident, kind="note", body=f"note {XSS}", actor_label="tests")
    return {"support": support, "billing": billing, "incident": incident}


def page_urls(data) -> list[str]:
    return [
        reverse("dashboard"),
        reverse("agents:agent-list"),
        reverse("agents:agent-detail", args=["support-bot"]),
        reverse("traces:trace-list"),
        reverse("traces:trace-detail", args=["a" * 32]),
        reverse("incidents:incident-list"),
        reverse("incidents:incident-new"),
        reverse("incidents:incident-detail", args=[7]),
        reverse("incidents:postmortem", args=[7]),
        reverse("incidents:metrics"),
        reverse("evals:case-list"),
    ]


def test_urls_are_the_public_contract():
    assert reverse("agents:agent-detail", args=["x"]) == "/agents/x/"
    assert reverse("traces:trace-detail", args=["abc"]) == "/traces/abc/"
    assert reverse("incidents:incident-new") == "/incidents/new/"
    assert reverse("incidents:incident-detail", args=[3]) == "/incidents/3/"
    assert reverse("incidents:postmortem", args=[3]) == "/incidents/3/postmortem/"
    assert reverse("evals:case-list") == "/evals/"


def test_anonymous_users_are_sent_to_login_from_every_page(client, data):
    for url in page_urls(data):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_login_page_renders(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_viewer_sees_every_page(viewer, make_client, data):
    c = make_client(viewer)
    for url in page_urls(data):
        response = c.get(url)
        assert response.status_code == 200, url
        assert b"viewer" in response.content, url  # role badge in the header


def test_pages_render_empty_states_without_data(viewer, make_client):
    c = make_client(viewer)
    for url in ["/", "/agents/", "/traces/", "/incidents/", "/incidents/new/", "/incidents/metrics/", "/evals/"]:
        response = c.get(url)
        assert response.status_code == 200, url
    assert b"No agents registered yet" in c.get("/").content
    assert b"No traces yet" in c.get("/traces/").content
    assert b"No incidents yet" in c.get("/incidents/metrics/").content


def test_unknown_objects_are_404(viewer, make_client, data):
    c = make_client(viewer)
    assert c.get("/agents/no-such-agent/").status_code == 404
    assert c.get("/traces/" + "f" * 32 + "/").status_code == 404
    assert c.get("/incidents/999/").status_code == 404
    assert c.get("/incidents/999/postmortem/").status_code == 404


def test_trace_page_escapes_untrusted_content(viewer, make_client, data):
    response = make_client(viewer).get(reverse("traces:trace-detail", args=["a" * 32]))
    body = response.content.decode()
    assert XSS not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "cut off at the token limit" in body  # finish_reason length is called out
    assert "&quot;amount&quot;: 10" in body  # arguments pretty-printed as escaped JSON
    error_page = make_client(viewer).get(reverse("traces:trace-detail", args=["b" * 32])).content.decode()
    assert XSS not in error_page
    assert "HTTP 500 &lt;script&gt;" in error_page


def test_incident_pages_escape_untrusted_content(viewer, make_client, data):
    c = make_client(viewer)
    for url in ["/", "/incidents/", "/incidents/7/", "/incidents/7/postmortem/"]:
        body = c.get(url).content.decode()
        assert XSS not in body, url


def test_trace_output_is_truncated(viewer, make_client, make_agent, make_spans, ingest):
    make_agent("chatty")
    ingest(make_spans(agent="chatty", trace_id="d" * 32, steps=[{"kind": "llm", "output": "x" * 5000}]))
    body = make_client(viewer).get(reverse("traces:trace-detail", args=["d" * 32])).content.decode()
    assert "x" * 2000 in body
    assert "x" * 2001 not in body
    assert "3,000 more characters not shown" in body


def trace_ids(response) -> set[str]:
    return {t.trace_id for t in response.context["page"].traces}


def test_trace_list_filters_by_agent_and_status(viewer, make_client, data):
    c = make_client(viewer)
    assert trace_ids(c.get("/traces/")) == {"a" * 32, "b" * 32, "c" * 32}
    assert trace_ids(c.get("/traces/", {"agent": "support-bot"})) == {"a" * 32, "b" * 32}
    assert trace_ids(c.get("/traces/", {"status": "error"})) == {"b" * 32}
    assert trace_ids(c.get("/traces/", {"agent": "billing-bot", "status": "error"})) == set()


def test_trace_list_filters_by_user_versions_tool_and_flag(viewer, make_client, data):
    c = make_client(viewer)
    assert trace_ids(c.get("/traces/", {"user_id": "user-2"})) == {"b" * 32}
    assert trace_ids(c.get("/traces/", {"model_version": "gpt-x-1"})) == {"a" * 32}
    assert trace_ids(c.get("/traces/", {"prompt_version": "p7"})) == {"a" * 32}
    assert trace_ids(c.get("/traces/", {"tool": "refund"})) == {"a" * 32}
    assert trace_ids(c.get("/traces/", {"window": "15m"})) == {"a" * 32, "b" * 32, "c" * 32}
    Trace.objects.filter(trace_id="c" * 32).update(flagged_span_id="0" * 16)
    assert trace_ids(c.get("/traces/", {"flagged": "yes"})) == {"c" * 32}


def test_trace_list_pages_newest_first_without_counting(viewer, make_client, data):
    c = make_client(viewer)
    first = c.get("/traces/", {"limit": 2})
    assert [t.trace_id for t in first.context["page"].traces] == ["c" * 32, "b" * 32]
    cursor = first.context["page"].next_cursor
    assert cursor
    second = c.get("/traces/", {"limit": 2, "cursor": cursor})
    assert [t.trace_id for t in second.context["page"].traces] == ["a" * 32]
    assert second.context["page"].next_cursor is None


def test_trace_list_rejects_bad_filters_clearly(viewer, make_client, data):
    response = make_client(viewer).get("/traces/", {"status": "exploded"})
    assert response.status_code == 200
    assert b"Some filters are not valid" in response.content


def test_htmx_requests_get_fragments(viewer, make_client, data):
    c = make_client(viewer)
    fragment = c.get("/traces/", {"agent": "support-bot"}, headers={"HX-Request": "true"})
    assert b"<html" not in fragment.content
    assert b"trace-results" in fragment.content
    embedded = c.get("/traces/", {"agent": "support-bot", "limit": 10, "embed": "1"}, headers={"HX-Request": "true"})
    assert b"All matching traces" in embedded.content  # the agent page loads its recent traces this way
    fleet = c.get("/", {"part": "fleet"}, headers={"HX-Request": "true"})
    assert b"<html" not in fleet.content
    assert b"support-bot" in fleet.content
    live = c.get("/", {"part": "live"}, headers={"HX-Request": "true"})
    assert b"<html" not in live.content
    assert b"Recent traces" in live.content


def test_agent_detail_lists_high_risk_tools_first(viewer, make_client, data):
    response = make_client(viewer).get("/agents/support-bot/")
    tools = [t["name"] for t in response.context["tools"]]
    assert tools[0] == "refund"
    assert response.context["audit_entries"]  # registration is audited


def test_postmortem_page_shows_templates_or_the_postmortem(viewer, make_client, data):
    c = make_client(viewer)
    templates = PostMortemTemplate.objects.all()
    body = c.get("/incidents/7/postmortem/").content.decode()
    if templates:
        assert templates[0].name in body
    PostMortem.objects.create(
        incident=data["incident"], sections=[{"key": "what", "title": "What happened", "body": XSS}]
    )
    body = c.get("/incidents/7/postmortem/").content.decode()
    assert "What happened" in body
    assert XSS not in body


def test_sev1_without_postmortem_is_overdue_after_48_hours(viewer, make_client, data):
    Incident.objects.filter(pk=data["incident"].pk).update(declared_at=datetime.now(UTC) - timedelta(hours=49))
    body = make_client(viewer).get("/incidents/").content.decode()
    assert "overdue" in body
