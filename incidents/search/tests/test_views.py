"""/search/?q=: every kind found, ids straight to their page, escaping, bad and empty input."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.actors import Actor
from incidents.models import PostMortem
from incidents.search.selectors import START, STOP, headline_parts
from incidents.services import timeline_record
from traces.models import Trace

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


@pytest.fixture
def make_trace(make_agent):
    agent = make_agent("search-bot")
    counter = {"n": 0}

    def make(**kwargs):
        counter["n"] += 1
        kwargs.setdefault("trace_id", f"{counter['n']:032x}")
        kwargs.setdefault("agent", agent)
        kwargs.setdefault("started_at", timezone.now() - timedelta(minutes=counter["n"]))
        return Trace.objects.create(**kwargs)

    return make


def get(client, q):
    return client.get("/search/", {"q": q})


def test_empty_query_shows_a_helpful_page(viewer, make_client):
    response = make_client(viewer).get("/search/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Search incidents, post-mortems, alerts and traces" in body
    assert "#12" in body


def test_incident_found_by_title_summary_and_timeline(viewer, make_client, make_incident, responder):
    by_title = make_incident(title="Refund agent spiralling")
    by_summary = make_incident(title="Other", summary="The planner kept calling the inventory tool")
    by_note = make_incident(title="Quiet one")
    timeline_record(
        incident=by_note, kind="note", body="Customer mentioned hallucinated discounts", actor=Actor.person(responder)
    )
    c = make_client(viewer)
    assert f"/incidents/{by_title.number}/" in get(c, "spiralling").content.decode()
    assert f"/incidents/{by_summary.number}/" in get(c, "inventory").content.decode()
    assert f"/incidents/{by_note.number}/" in get(c, "hallucinated discounts").content.decode()


def test_postmortem_found_by_section_body(viewer, make_client, make_incident):
    incident = make_incident(title="Cost spike")
    PostMortem.objects.create(
        incident=incident,
        sections=[{"key": "what", "title": "What", "prompt": "", "body": "The retriever returned stale embeddings"}],
    )
    body = get(make_client(viewer), "stale embeddings").content.decode()
    assert f"/incidents/{incident.number}/postmortem/" in body
    assert "<mark>stale</mark>" in body


def test_alert_found_by_title(viewer, make_client, make_alert):
    make_alert(title="Token ratio far above normal")
    body = get(make_client(viewer), "token ratio").content.decode()
    assert 'id="group-alerts"' in body
    assert "Token ratio far above normal" in body or "<mark>Token</mark>" in body


def test_trace_found_by_input_output_and_agent(viewer, make_client, make_trace):
    t_in = make_trace(root_input="please refund order 991 twice")
    t_out = make_trace(root_output="I deleted the production table")
    c = make_client(viewer)
    assert t_in.get_absolute_url() in get(c, "refund").content.decode().replace("&amp;", "&")
    assert t_out.get_absolute_url() in get(c, "production table").content.decode().replace("&amp;", "&")
    assert t_in.get_absolute_url() in get(c, "search-bot").content.decode().replace("&amp;", "&")


def test_trace_id_goes_straight_to_the_trace(viewer, make_client, make_trace):
    trace = make_trace()
    response = get(make_client(viewer), trace.trace_id)
    assert response.status_code == 302
    assert response["Location"] == trace.get_absolute_url()


def test_incident_number_goes_straight_to_the_incident(viewer, make_client, make_incident):
    incident = make_incident()
    for q in (f"#{incident.number}", str(incident.number), f"INC-{incident.number}"):
        response = get(make_client(viewer), q)
        assert response.status_code == 302, q
        assert response["Location"] == f"/incidents/{incident.number}/"


def test_session_and_user_ids_are_listed_as_exact_matches(viewer, make_client, make_trace):
    make_trace(session_id="sess-77", user_id="user-77")
    c = make_client(viewer)
    assert "/traces/sessions/sess-77/" in get(c, "sess-77").content.decode()
    assert "/traces/users/user-77/" in get(c, "user-77").content.decode()


def test_agent_slug_is_an_exact_match_and_its_traces_are_listed(viewer, make_client, make_trace):
    trace = make_trace()
    body = get(make_client(viewer), "search-bot").content.decode()
    assert "/agents/search-bot/" in body
    assert trace.get_absolute_url() in body.replace("&amp;", "&")


def test_script_in_trace_input_is_escaped_in_results(viewer, make_client, make_trace):
    # ts_headline drops a <script> element's tags but keeps other markup raw (an <img onerror>): both
    # must reach the page as text.
    img = "<img src=x onerror=alert(1)>"
    make_trace(root_input=f"exploit {XSS} payload")
    make_trace(root_input=f"exploit {img} payload", session_id=XSS)
    body = get(make_client(viewer), "exploit payload").content.decode()
    assert XSS not in body and img not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    assert "&lt;script&gt;" in body  # the session id, printed in the hit's meta
    assert "<mark>exploit</mark>" in body


def test_headline_markers_become_parts_never_html():
    assert headline_parts(f"a {START}b{STOP} <c>") == [("a ", False), ("b", True), (" <c>", False)]
    assert headline_parts(None) == []


def test_nothing_found_says_so(viewer, make_client):
    body = get(make_client(viewer), "zebra quantum").content.decode()
    assert "Nothing matches" in body


def test_groups_are_bounded(viewer, make_client, make_trace):
    for _ in range(12):
        make_trace(root_input="bounded loop")
    body = get(make_client(viewer), "bounded").content.decode()
    assert body.count("search-bot · ") == 10
    assert "10+" in body


def test_too_long_query_is_a_clear_400(viewer, make_client):
    response = get(make_client(viewer), "x" * 5000)
    assert response.status_code == 400
    assert "at most 200" in response.content.decode()


def test_nul_in_query_is_a_clear_400_not_500(viewer, make_client):
    response = make_client(viewer).get("/search/?q=a%00b")
    assert response.status_code == 400


def test_websearch_syntax_never_errors(viewer, make_client):
    for q in ('"unclosed', "or or or", "-", "!!! && ||", "a:*", "'"):
        assert get(make_client(viewer), q).status_code == 200, q


def test_a_markdown_snippet_reads_as_words_and_trace_text_stays_as_it_came():
    md = f"## Cause\\n\\nThe agent called `{START}describe_table{STOP}` **twice**, see [the run](https://x.example/r)"
    parts = headline_parts(md.replace("\\n", "\n"), markdown=True)
    assert "".join(t for t, _ in parts) == "Cause\n\nThe agent called describe_table twice, see the run"
    assert ("describe_table", True) in parts
    raw = f"`{START}rm -rf{STOP}` **now**"
    assert "".join(t for t, _ in headline_parts(raw)) == "`rm -rf` **now**"  # a trace's text: untouched
