"""Post-mortems: services (start, sections, traces, action items, review and publish), pages, export, roles."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from core.actors import Actor
from incidents import postmortem as services
from incidents.models import (
    ActionItem,
    FailureClass,
    Incident,
    PostMortem,
    PostMortemTemplate,
    TimelineEntry,
)
from incidents.postmortem_selectors import NO_ACTION_WARNING, PROMPT_ONLY_WARNING, trace_excerpt
from incidents.services import timeline_record
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


# --- services -----------------------------------------------------------------------------------------


def test_start_copies_the_template_sections_and_sets_the_sev1_deadline(incident, sev1_template, responder, trace):
    pm = services.postmortem_start(incident=incident, template=sev1_template, actor=Actor.person(responder))
    pm.refresh_from_db()
    assert [s["key"] for s in pm.sections] == [s["key"] for s in sev1_template.sections]
    assert all(s["body"] == "" and s["title"] for s in pm.sections)
    assert pm.due_at == DECLARED + timedelta(hours=48)
    assert pm.author == responder
    assert pm.status == PostMortem.Status.DRAFT
    assert list(pm.attached_traces.all()) == [trace]  # the incident's traces come in automatically
    entry = TimelineEntry.objects.get(incident=incident, kind="postmortem")
    assert sev1_template.name in entry.body


def test_non_sev1_post_mortem_has_no_deadline(incident, responder):
    Incident.objects.filter(pk=incident.pk).update(severity="SEV3")
    incident.refresh_from_db()
    pm = services.postmortem_start(
        incident=incident, template=PostMortemTemplate.objects.get(slug="standard"), actor=Actor.person(responder)
    )
    assert pm.due_at is None
    assert not pm.is_overdue


def test_starting_twice_is_refused_and_writes_nothing(postmortem, incident, sev1_template, responder):
    with pytest.raises(ValidationError, match="already has a post-mortem"):
        services.postmortem_start(incident=incident, template=sev1_template, actor=Actor.person(responder))
    assert PostMortem.objects.count() == 1
    assert TimelineEntry.objects.filter(kind="postmortem").count() == 1


def test_a_template_without_sections_is_refused(incident, responder):
    empty = PostMortemTemplate.objects.create(slug="empty", name="Empty", sections=[])
    with pytest.raises(ValidationError, match="no sections"):
        services.postmortem_start(incident=incident, template=empty, actor=Actor.person(responder))
    assert not PostMortem.objects.exists()
    assert not TimelineEntry.objects.exists()


def test_section_save_writes_one_section(postmortem, responder):
    services.postmortem_section_save(
        postmortem=postmortem, key="why", body="The **prompt**.", actor=Actor.person(responder)
    )
    postmortem.refresh_from_db()
    bodies = {s["key"]: s["body"] for s in postmortem.sections}
    assert bodies["why"] == "The **prompt**."
    assert bodies["what"] == ""


def test_section_save_refuses_an_unknown_section_or_a_huge_body(postmortem, responder):
    with pytest.raises(ValidationError, match="no section"):
        services.postmortem_section_save(postmortem=postmortem, key="nope", body="x", actor=Actor.person(responder))
    with pytest.raises(ValidationError, match="at most"):
        services.postmortem_section_save(
            postmortem=postmortem, key="why", body="x" * (services.SECTION_BODY_MAX + 1), actor=Actor.person(responder)
        )
    postmortem.refresh_from_db()
    assert all(s["body"] == "" for s in postmortem.sections)


def test_publish_is_refused_while_sections_are_empty_naming_them(postmortem, responder):
    services.postmortem_status_set(postmortem=postmortem, status="in_review", actor=Actor.person(responder))
    services.postmortem_section_save(
        postmortem=postmortem, key="what", body="It refunded.", actor=Actor.person(responder)
    )
    services.postmortem_section_save(postmortem=postmortem, key="why", body="   ", actor=Actor.person(responder))
    with pytest.raises(ValidationError) as caught:
        services.postmortem_status_set(postmortem=postmortem, status="published", actor=Actor.person(responder))
    message = " ".join(caught.value.messages)
    assert "Why did it do it?" in message
    assert "What did the agent do?" not in message
    postmortem.refresh_from_db()
    assert postmortem.status == "in_review"
    assert postmortem.published_at is None


def test_publish_goes_through_review_and_stamps_published_at(postmortem, responder):
    fill(postmortem, Actor.person(responder))
    with pytest.raises(ValidationError, match="cannot go from draft to published"):
        services.postmortem_status_set(postmortem=postmortem, status="published", actor=Actor.person(responder))
    services.postmortem_status_set(postmortem=postmortem, status="in_review", actor=Actor.person(responder))
    services.postmortem_status_set(postmortem=postmortem, status="published", actor=Actor.person(responder))
    postmortem.refresh_from_db()
    assert postmortem.status == "published"
    assert postmortem.published_at is not None
    kinds = list(TimelineEntry.objects.filter(kind="postmortem").values_list("data__action", flat=True))
    assert kinds == ["start", "in_review", "published"]
    with pytest.raises(ValidationError, match="published"):
        services.postmortem_section_save(
            postmortem=postmortem, key="why", body="late edit", actor=Actor.person(responder)
        )


def test_unknown_status_is_refused(postmortem, responder):
    with pytest.raises(ValidationError, match="Unknown status"):
        services.postmortem_status_set(postmortem=postmortem, status="shipped", actor=Actor.person(responder))


def test_action_items_are_tracked_to_closure(postmortem, responder):
    item = services.action_item_add(
        postmortem=postmortem,
        title="Add the refund trajectory as an eval case",
        kind="eval_case",
        owner=responder,
        due_date=date(2025, 3, 10),
        actor=Actor.person(responder),
    )
    assert item.status == "open" and item.owner == responder
    services.action_item_status_set(item=item, status="done", actor=Actor.person(responder))
    item.refresh_from_db()
    assert item.done_at is not None
    services.action_item_status_set(item=item, status="in_progress", actor=Actor.person(responder))
    item.refresh_from_db()
    assert item.done_at is None


def test_action_item_bad_input_is_refused_and_nothing_written(postmortem, responder):
    with pytest.raises(ValidationError) as caught:
        services.action_item_add(postmortem=postmortem, title="  ", kind="wish", actor=Actor.person(responder))
    assert set(caught.value.message_dict) == {"title", "kind"}
    assert not ActionItem.objects.exists()
    item = services.action_item_add(
        postmortem=postmortem, title="Pin the model", kind="version_pin", actor=Actor.person(responder)
    )
    with pytest.raises(ValidationError, match="Unknown status"):
        services.action_item_status_set(item=item, status="finished", actor=Actor.person(responder))
    item.refresh_from_db()
    assert item.status == "open"


def test_prompt_only_actions_get_the_no_structural_change_warning(postmortem, responder, viewer, make_client):
    c = make_client(viewer)
    assert NO_ACTION_WARNING in c.get("/incidents/7/postmortem/").content.decode()
    services.action_item_add(
        postmortem=postmortem, title="Improve the prompt", kind="prompt", actor=Actor.person(responder)
    )
    assert PROMPT_ONLY_WARNING in c.get("/incidents/7/postmortem/").content.decode()
    services.action_item_add(
        postmortem=postmortem, title="Cap refunds at $50", kind="circuit_breaker", actor=Actor.person(responder)
    )
    body = c.get("/incidents/7/postmortem/").content.decode()
    assert PROMPT_ONLY_WARNING not in body
    assert NO_ACTION_WARNING not in body


def test_unpublished_sev1_post_mortem_is_overdue_after_48_hours(postmortem, responder, viewer, make_client):
    assert postmortem.is_overdue  # declared in 2025-03, long past due
    body = make_client(viewer).get("/incidents/7/postmortem/").content.decode()
    assert "overdue" in body
    fill(postmortem, Actor.person(responder))
    services.postmortem_status_set(postmortem=postmortem, status="in_review", actor=Actor.person(responder))
    services.postmortem_status_set(postmortem=postmortem, status="published", actor=Actor.person(responder))
    postmortem.refresh_from_db()
    assert not postmortem.is_overdue


def test_traces_attach_and_detach(postmortem, responder, make_spans, ingest):
    ingest(make_spans(agent="refund-bot", trace_id="b" * 32, steps=[{"kind": "llm", "output": "x"}]))
    other = Trace.objects.get(trace_id="b" * 32)
    services.postmortem_trace_attach(postmortem=postmortem, trace=other, actor=Actor.person(responder))
    services.postmortem_trace_attach(postmortem=postmortem, trace=other, actor=Actor.person(responder))  # no-op
    assert postmortem.attached_traces.count() == 2
    services.postmortem_trace_detach(postmortem=postmortem, trace=other, actor=Actor.person(responder))
    assert list(postmortem.attached_traces.values_list("trace_id", flat=True)) == ["a" * 32]


# --- trace excerpts -------------------------------------------------------------------------------------


def test_unflagged_trace_shows_its_last_five_tool_calls_and_every_call_in_order(trace):
    excerpt = trace_excerpt(trace=trace)
    assert not excerpt.flagged
    assert [s.tool_name for s in excerpt.steps] == ["search"] * 4 + ["refund"]
    assert [c.tool_name for c in excerpt.tool_calls] == ["search"] * 6 + ["refund"]
    assert '"q": "order 0"' in excerpt.tool_calls[0].args_text


def test_flagged_trace_shows_three_steps_before_and_two_after(trace):
    steps = list(trace.steps.order_by("started_at", "id"))
    flagged = steps[5]  # the root is first
    Trace.objects.filter(pk=trace.pk).update(flagged_span_id=flagged.span_id, flag_note="went wrong here")
    trace.refresh_from_db()
    excerpt = trace_excerpt(trace=trace)
    assert excerpt.flagged
    spans = [s.span_id for s in excerpt.steps]
    assert spans == [s.span_id for s in steps[2:8]]
    assert [s.flagged for s in excerpt.steps] == [False, False, False, True, False, False]


# --- pages ------------------------------------------------------------------------------------------------


def test_page_preselects_the_template_for_the_severity(incident, viewer, responder, make_client):
    response = make_client(responder).get("/incidents/7/postmortem/")
    assert response.context["default_template"].slug == "sev1-agent"
    assert b"Start the post-mortem" in response.content
    assert b"Start the post-mortem" not in make_client(viewer).get("/incidents/7/postmortem/").content


def test_responder_starts_writes_and_publishes_through_the_forms(incident, sev1_template, responder, make_client):
    c = make_client(responder)
    response = c.post(reverse("incidents:postmortem-start", args=[7]), {"template": sev1_template.pk})
    assert response.status_code == 302
    pm = PostMortem.objects.get(incident=incident)
    for section in pm.sections:
        url = reverse("incidents:postmortem-section-save", args=[7, section["key"]])
        assert c.post(url, {"body": f"About {section['key']}"}).status_code == 302
    c.post(reverse("incidents:postmortem-status", args=[7]), {"status": "in_review"})
    c.post(reverse("incidents:postmortem-status", args=[7]), {"status": "published"})
    pm.refresh_from_db()
    assert pm.status == "published"


def test_refused_publish_shows_the_empty_sections(postmortem, responder, make_client):
    c = make_client(responder)
    c.post(reverse("incidents:postmortem-status", args=[7]), {"status": "in_review"})
    response = c.post(reverse("incidents:postmortem-status", args=[7]), {"status": "published"}, follow=True)
    assert "Write every section before publishing" in response.content.decode()
    postmortem.refresh_from_db()
    assert postmortem.status == "in_review"


def test_htmx_section_save_returns_the_section_fragment(postmortem, responder, make_client):
    url = reverse("incidents:postmortem-section-save", args=[7, "what"])
    response = make_client(responder).post(url, {"body": "It *refunded*."}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "<html" not in body
    assert 'id="section-what"' in body
    assert "<em>refunded</em>" in body
    assert "Saved." in body


def test_script_in_a_section_stays_inert_in_page_preview_and_print(postmortem, responder, viewer, make_client):
    services.postmortem_section_save(
        postmortem=postmortem, key="what", body=f"Hi {XSS} **bold**", actor=Actor.person(responder)
    )
    for c in (make_client(viewer), make_client(responder)):  # rendered read-only and in the editor
        body = c.get("/incidents/7/postmortem/").content.decode()
        assert XSS not in body
        assert "<strong>bold</strong>" in body
    preview = make_client(responder).post(reverse("incidents:postmortem-preview", args=[7]), {"body": XSS + " *x*"})
    assert preview.status_code == 200
    assert "<script" not in preview.content.decode()
    assert "<em>x</em>" in preview.content.decode()
    printed = make_client(viewer).get(reverse("incidents:postmortem-print", args=[7])).content.decode()
    assert XSS not in printed


def test_attached_trace_tool_calls_show_inline_escaped_with_a_link(postmortem, viewer, make_client):
    body = make_client(viewer).get("/incidents/7/postmortem/").content.decode()
    assert f'href="/traces/{"a" * 32}/"' in body
    assert "refund" in body
    assert "&quot;amount&quot;: 500" in body
    assert XSS not in body


def test_timeline_and_last_blast_radius_come_in(postmortem, viewer, make_client, incident):
    TimelineEntry.objects.create(incident=incident, kind="note", body=f"**Paused** {XSS}", actor_label="ops")
    timeline_record(
        incident=incident,
        kind="blast_radius",
        body="old",
        actor=Actor.system("tests"),
        data={"trajectories": 1, "users": 1, "still_running": 1},
    )
    timeline_record(
        incident=incident,
        kind="blast_radius",
        body="new",
        actor=Actor.system("tests"),
        data={"trajectories": 412, "users": 97, "still_running": 3},
    )
    response = make_client(viewer).get("/incidents/7/postmortem/")
    body = response.content.decode()
    assert "<strong>Paused</strong>" in body and XSS not in body
    assert response.context["blast"]["trajectories"] == 412
    assert response.context["blast"]["users"] == 97
    assert response.context["blast"]["running"] == 3


def test_markdown_export_holds_everything(postmortem, responder, viewer, make_client):
    services.postmortem_section_save(
        postmortem=postmortem, key="what", body="It refunded **everyone**.", actor=Actor.person(responder)
    )
    services.action_item_add(
        postmortem=postmortem, title="Refund cap", kind="circuit_breaker", actor=Actor.person(responder)
    )
    response = make_client(viewer).get(reverse("incidents:postmortem-export", args=[7]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/markdown")
    assert response["Content-Disposition"] == 'attachment; filename="INC-7-postmortem.md"'
    text = response.content.decode()
    assert "# Post-mortem INC-7: Refund agent refunded everyone" in text
    assert "Severity: SEV1" in text
    assert "Behavioural deviation / tool misuse / scope creep" in text
    assert "## Timeline" in text and "Post-mortem started" in text
    assert "## What did the agent do?" in text and "It refunded **everyone**." in text
    assert "refund {" in text and '"amount": 500' in text
    assert "Refund cap (Circuit breaker / budget setting" in text
    assert reverse("incidents:postmortem-export", args=[7]) == "/incidents/7/postmortem/export.md"


def test_print_page_has_no_nav_and_print_css(postmortem, viewer, make_client):
    response = make_client(viewer).get(reverse("incidents:postmortem-print", args=[7]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "mainnav" not in body
    assert "@media print" in body
    assert "What did the agent do?" in body


def test_export_and_print_are_404_without_a_post_mortem(incident, viewer, make_client):
    c = make_client(viewer)
    assert c.get(reverse("incidents:postmortem-export", args=[7])).status_code == 404
    assert c.get(reverse("incidents:postmortem-print", args=[7])).status_code == 404


# --- roles ------------------------------------------------------------------------------------------------


def test_viewers_cannot_write_and_nothing_is_written(incident, sev1_template, viewer, responder, make_client, trace):
    c = make_client(viewer)
    assert c.post(reverse("incidents:postmortem-start", args=[7]), {"template": sev1_template.pk}).status_code == 403
    assert not PostMortem.objects.exists()
    pm = services.postmortem_start(incident=incident, template=sev1_template, actor=Actor.person(responder))
    item = services.action_item_add(postmortem=pm, title="Pin", kind="version_pin", actor=Actor.person(responder))
    refused = [
        (reverse("incidents:postmortem-section-save", args=[7, "what"]), {"body": "viewer text"}),
        (reverse("incidents:postmortem-preview", args=[7]), {"body": "x"}),
        (reverse("incidents:postmortem-status", args=[7]), {"status": "in_review"}),
        (reverse("incidents:postmortem-trace-detach", args=[7, "a" * 32]), {}),
        (reverse("incidents:postmortem-trace-attach", args=[7]), {"trace_id": "a" * 32}),
        (reverse("incidents:action-item-add", args=[7]), {"title": "x", "kind": "prompt"}),
        (reverse("incidents:action-item-status", args=[7, item.pk]), {"status": "done"}),
    ]
    for url, data in refused:
        assert c.post(url, data).status_code == 403, url
    pm.refresh_from_db()
    item.refresh_from_db()
    assert pm.status == "draft" and all(s["body"] == "" for s in pm.sections)
    assert pm.attached_traces.count() == 1
    assert item.status == "open" and ActionItem.objects.count() == 1
