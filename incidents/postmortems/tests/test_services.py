"""Post-mortem services: start, sections, traces, action items, review and publish."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.actors import Actor
from incidents.models import ActionItem, Incident, PostMortem, PostMortemTemplate, TimelineEntry
from incidents.postmortems import services
from incidents.postmortems.selectors import NO_ACTION_WARNING, PROMPT_ONLY_WARNING
from incidents.postmortems.tests.conftest import DECLARED, fill
from traces.models import Trace


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


def test_publish_is_refused_while_the_incident_is_not_yet_classified(postmortem, incident, responder):
    fill(postmortem, Actor.person(responder))
    services.postmortem_status_set(postmortem=postmortem, status="in_review", actor=Actor.person(responder))
    Incident.objects.filter(pk=incident.pk).update(failure_class=None)
    with pytest.raises(ValidationError, match="failure class"):
        services.postmortem_status_set(postmortem=postmortem, status="published", actor=Actor.person(responder))
    postmortem.refresh_from_db()
    assert postmortem.status == "in_review" and postmortem.published_at is None


# --- saving the whole post-mortem at once ------------------------------------------------------------------


def _hashes(postmortem):
    return {s["key"]: services.postmortem_body_hash(s["body"]) for s in postmortem.sections}


def test_sections_save_writes_every_section_in_one_update(postmortem, responder):
    bodies = {s["key"]: f"About {s['key']}.\r\nSecond line." for s in postmortem.sections}
    with CaptureQueriesContext(connection) as queries:
        written = services.postmortem_sections_save(
            postmortem=postmortem, bodies=bodies, loaded=_hashes(postmortem), actor=Actor.person(responder)
        )
    assert written == [s["key"] for s in postmortem.sections]
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1  # one row update, inside the service's one transaction
    postmortem.refresh_from_db()
    assert all(s["body"] == f"About {s['key']}.\nSecond line." for s in postmortem.sections)


def test_sections_save_with_one_bad_body_writes_nothing(postmortem, responder):
    bodies = {"what": "Fine.", "why": "x" * (services.SECTION_BODY_MAX + 1)}
    with pytest.raises(ValidationError) as refused:
        services.postmortem_sections_save(postmortem=postmortem, bodies=bodies, actor=Actor.person(responder))
    assert list(refused.value.message_dict) == ["why"]
    assert "at most 50,000 characters" in refused.value.message_dict["why"][0]
    postmortem.refresh_from_db()
    assert all(s["body"] == "" for s in postmortem.sections)


def test_sections_save_refuses_an_unknown_section_and_writes_nothing(postmortem, responder):
    with pytest.raises(ValidationError, match="no section “nope”"):
        services.postmortem_sections_save(
            postmortem=postmortem, bodies={"what": "Fine.", "nope": "x"}, actor=Actor.person(responder)
        )
    postmortem.refresh_from_db()
    assert all(s["body"] == "" for s in postmortem.sections)


def test_sections_save_keeps_a_section_someone_else_saved_that_this_editor_did_not_touch(postmortem, responder):
    loaded = _hashes(postmortem)  # both editors open the empty post-mortem
    other = PostMortem.objects.get(pk=postmortem.pk)
    services.postmortem_sections_save(postmortem=other, bodies={"why": "Theirs."}, actor=Actor.person(responder))
    written = services.postmortem_sections_save(
        postmortem=postmortem,
        bodies={s["key"]: ("Mine." if s["key"] == "what" else "") for s in postmortem.sections},
        loaded=loaded,
        actor=Actor.person(responder),
    )
    assert written == ["what"]
    postmortem.refresh_from_db()
    bodies = {s["key"]: s["body"] for s in postmortem.sections}
    assert bodies["what"] == "Mine." and bodies["why"] == "Theirs."


def test_sections_save_a_touched_section_is_last_write_wins(postmortem, responder):
    loaded = _hashes(postmortem)
    services.postmortem_sections_save(postmortem=postmortem, bodies={"why": "Theirs."}, actor=Actor.person(responder))
    services.postmortem_sections_save(
        postmortem=postmortem, bodies={"why": "Mine."}, loaded=loaded, actor=Actor.person(responder)
    )
    postmortem.refresh_from_db()
    assert {s["key"]: s["body"] for s in postmortem.sections}["why"] == "Mine."


def test_sections_save_is_refused_once_published(postmortem, responder):
    fill(postmortem, Actor.person(responder))
    services.postmortem_status_set(postmortem=postmortem, status="in_review", actor=Actor.person(responder))
    services.postmortem_status_set(postmortem=postmortem, status="published", actor=Actor.person(responder))
    with pytest.raises(ValidationError, match="published"):
        services.postmortem_sections_save(
            postmortem=postmortem, bodies={"what": "Late."}, actor=Actor.person(responder)
        )
    postmortem.refresh_from_db()
    assert {s["key"]: s["body"] for s in postmortem.sections}["what"] == "Written."
