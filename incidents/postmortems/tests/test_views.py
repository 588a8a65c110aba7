"""Post-mortem pages: writing through the forms and htmx, export, print, untrusted text inert, roles."""

from django.urls import reverse

from core.actors import Actor
from incidents.models import ActionItem, Incident, PostMortem, TimelineEntry
from incidents.postmortems import services
from incidents.postmortems.tests.conftest import XSS, fill
from incidents.services import timeline_record
from traces.models import Trace


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
    bodies = {f"body_{section['key']}": f"About {section['key']}" for section in pm.sections}
    assert c.post(reverse("incidents:postmortem-save", args=[7]), bodies).status_code == 302
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


def test_script_in_a_section_stays_inert_in_page_preview_and_print(postmortem, responder, viewer, make_client):
    services.postmortem_section_save(
        postmortem=postmortem, key="what", body=f"Hi {XSS} **bold**", actor=Actor.person(responder)
    )
    for c in (make_client(viewer), make_client(responder)):  # rendered read-only and in the editor
        body = c.get("/incidents/7/postmortem/").content.decode()
        assert XSS not in body
        assert "<strong>bold</strong>" in body
    preview = make_client(responder).post(
        reverse("incidents:postmortem-preview", args=[7]) + "?section=what", {"body_what": XSS + " *x*"}
    )
    assert preview.status_code == 200
    assert "<script" not in preview.content.decode()
    assert "<em>x</em>" in preview.content.decode()
    printed = make_client(viewer).get(reverse("incidents:postmortem-print", args=[7])).content.decode()
    assert XSS not in printed


def test_attached_trace_tool_calls_show_inline_escaped_with_a_link(postmortem, viewer, make_client):
    body = make_client(viewer).get("/incidents/7/postmortem/").content.decode()
    assert f'href="/traces/{"a" * 32}/?agent=refund-bot"' in body
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
        (reverse("incidents:postmortem-save", args=[7]), {"body_what": "viewer text"}),
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


def test_a_50_call_loop_is_one_line_in_the_export_and_the_print_view(
    postmortem, responder, viewer, make_client, make_spans, ingest
):
    steps = [{"kind": "tool", "tool": "search", "args": {"q": "order 9"}, "output": "none"}] * 50
    steps += [{"kind": "tool", "tool": "refund", "args": {"amount": 5}}]
    ingest(make_spans(agent="refund-bot", trace_id="f" * 32, steps=steps))
    services.postmortem_trace_attach(
        postmortem=postmortem, trace=Trace.objects.get(trace_id="f" * 32), actor=Actor.person(responder)
    )
    client = make_client(viewer)
    text = client.get(reverse("incidents:postmortem-export", args=[7])).content.decode()
    assert text.count('×50 identical calls to search {"q": "order 9"} [ok]') == 1
    assert text.count('search {"q": "order 9"}') == 1  # the 49 others are not listed one by one
    assert "#2–#51 ×50 identical" in text  # #1 is the run's root span
    assert "#52 refund" in text
    body = client.get(reverse("incidents:postmortem-print", args=[7])).content.decode()
    assert body.count("×50 identical calls to") == 1
    assert body.count("order 9") == 1
    page = client.get(reverse("incidents:postmortem", args=[7])).content.decode()
    assert page.count("×50 identical calls to") == 1


def test_the_tool_calls_section_starts_from_the_attached_trajectory(
    postmortem, responder, make_client, make_spans, ingest
):
    steps = [{"kind": "tool", "tool": "lookup_order", "args": {"order": "A-17"}}] * 3
    ingest(make_spans(agent="refund-bot", trace_id="e" * 32, steps=steps))
    services.postmortem_trace_attach(
        postmortem=postmortem, trace=Trace.objects.get(trace_id="e" * 32), actor=Actor.person(responder)
    )
    # The agent-failure template's question (the fixture's shorter template lacks it).
    postmortem.sections.append(
        {"key": "tool_calls", "title": "Which tool calls, in which order, returned what?", "prompt": "", "body": ""}
    )
    postmortem.save(update_fields=["sections"])
    client = make_client(responder)
    page = client.get(reverse("incidents:postmortem", args=[7])).content.decode()
    section = page[page.index('id="section-tool_calls"') :]
    textarea = section[section.index("<textarea") : section.index("</textarea>")]
    assert "×3 identical calls to lookup_order" in textarea and "e" * 32 in textarea
    assert "pm-draft-note" in section[: section.index("</section>")]
    saved = client.post(
        reverse("incidents:postmortem-save", args=[7]), {"body_tool_calls": "Looked the order up thrice."}
    )
    assert saved.status_code in (200, 302)
    page = client.get(reverse("incidents:postmortem", args=[7])).content.decode()
    section = page[page.index('id="section-tool_calls"') :]
    assert "Looked the order up thrice." in section[: section.index("</textarea>")]
    assert "identical calls to lookup_order" not in section[: section.index("</textarea>")]  # the author's text wins


# --- one form, one save, autosave -------------------------------------------------------------------------

HX = {"HX-Request": "true"}


def _loaded_form(client):
    """What the editor posts: each section's textarea and its hidden loaded-body hash, as the page renders them."""
    page = client.get(reverse("incidents:postmortem", args=[7]))
    return {
        **{f"body_{s['key']}": s["value"] for s in page.context["sections"]},
        **{f"base_{s['key']}": s["base"] for s in page.context["sections"]},
    }


def test_editor_is_one_form_with_one_save_button(postmortem, responder, make_client):
    body = make_client(responder).get(reverse("incidents:postmortem", args=[7])).content.decode()
    assert body.count('id="pm-form"') == 1
    assert body.count("Save post-mortem") == 1
    assert "Save section" not in body
    form = body[body.index('id="pm-form"') : body.index("</form>", body.index('id="pm-form"'))]
    for key in ["what", "why", "guardrails", "blast_radius", "prevention"]:
        assert f'name="body_{key}"' in form and f'name="base_{key}"' in form
    assert 'hx-trigger="submit, input changed delay:2s"' in form
    assert "js/postmortem_editor.js" in body


def test_htmx_save_answers_the_status_and_the_banner_out_of_band(postmortem, responder, make_client):
    c = make_client(responder)
    data = {**_loaded_form(c), "body_what": "It *refunded*."}
    response = c.post(reverse("incidents:postmortem-save", args=[7]), data, headers=HX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert 'id="pm-save-status"' in body and "Saved " in body and "Not saved" not in body
    assert '<div id="pm-publish" hx-swap-oob="true">' in body
    assert "Empty: Why did it do it?" in body
    assert "What did the agent do?" not in body[body.index("Empty:") :]  # no longer empty
    assert '<div id="pm-bases" hx-swap-oob="true">' in body
    assert services.postmortem_body_hash("It *refunded*.") in body
    assert "pm:saved" in response["HX-Trigger"]
    postmortem.refresh_from_db()
    assert {s["key"]: s["body"] for s in postmortem.sections}["what"] == "It *refunded*."


def test_banner_says_it_can_be_published_once_the_last_section_is_filled(postmortem, responder, make_client):
    c = make_client(responder)
    c.post(reverse("incidents:postmortem-status", args=[7]), {"status": "in_review"})
    data = _loaded_form(c)
    page = c.get(reverse("incidents:postmortem", args=[7])).content.decode()
    assert 'value="published" class="btn btn-primary" disabled' in page
    for key in ["what", "why", "guardrails", "blast_radius"]:
        data[f"body_{key}"] = f"About {key}."
    body = c.post(reverse("incidents:postmortem-save", args=[7]), data, headers=HX).content.decode()
    assert "Empty: Which structural guardrail change prevents recurrence?<" in body
    data["body_prevention"] = "A circuit breaker."
    body = c.post(reverse("incidents:postmortem-save", args=[7]), data, headers=HX).content.decode()
    assert "it can be published." in body
    assert "Empty:" not in body
    publish = body[body.index('value="published"') :]
    assert "disabled" not in publish[: publish.index(">")]


def test_a_bad_value_writes_nothing_and_is_shown_next_to_its_section(postmortem, responder, make_client):
    c = make_client(responder)
    data = {**_loaded_form(c), "body_what": "Fine.", "body_why": "x" * (services.SECTION_BODY_MAX + 1)}
    response = c.post(reverse("incidents:postmortem-save", args=[7]), data, headers=HX)
    body = response.content.decode()
    assert "Not saved: “Why did it do it?” A section holds at most 50,000 characters" in body
    assert "at most 50,000 characters" in body
    errors = body[body.index('<div id="errors-why" class="pm-section-errors" hx-swap-oob="true">') :]
    assert "at most 50,000 characters" in errors[: errors.index("</div></div>")]
    assert '<div id="errors-what" class="pm-section-errors" hx-swap-oob="true"></div>' in body  # cleared
    assert '<div id="pm-bases"' not in body  # still compared against what was loaded
    assert "HX-Trigger" not in response
    postmortem.refresh_from_db()
    assert all(s["body"] == "" for s in postmortem.sections)

    # without htmx: the page again, what was typed kept, the error next to its section
    response = c.post(reverse("incidents:postmortem-save", args=[7]), data)
    assert response.status_code == 400
    body = response.content.decode()
    section = body[body.index('id="section-why"') :]
    assert "at most 50,000 characters" in section[: section.index("<textarea")]
    what = body[body.index('id="body-what"') :]
    assert "Fine.</textarea>" in what[: what.index("</textarea>") + 11]
    postmortem.refresh_from_db()
    assert all(s["body"] == "" for s in postmortem.sections)


def test_unchanged_sections_are_not_overwritten(postmortem, responder, make_client):
    c = make_client(responder)
    data = _loaded_form(c)  # this editor opened the empty post-mortem
    services.postmortem_section_save(
        postmortem=postmortem, key="why", body="Someone else's.", actor=Actor.person(responder)
    )
    data["body_what"] = "Mine."
    response = c.post(reverse("incidents:postmortem-save", args=[7]), data, headers=HX)
    assert "Saved " in response.content.decode()
    postmortem.refresh_from_db()
    bodies = {s["key"]: s["body"] for s in postmortem.sections}
    assert bodies["what"] == "Mine." and bodies["why"] == "Someone else's."


def test_autosave_with_nothing_changed_says_so(postmortem, responder, make_client):
    c = make_client(responder)
    response = c.post(reverse("incidents:postmortem-save", args=[7]), _loaded_form(c), headers=HX)
    assert "No changes to save" in response.content.decode()
    assert "pm:saved" in response["HX-Trigger"]  # nothing is left unsaved


def test_a_published_post_mortem_has_no_editor_and_refuses_a_save(postmortem, responder, make_client):
    c = make_client(responder)
    data = _loaded_form(c)
    fill(postmortem, Actor.person(responder))
    services.postmortem_status_set(postmortem=postmortem, status="in_review", actor=Actor.person(responder))
    services.postmortem_status_set(postmortem=postmortem, status="published", actor=Actor.person(responder))
    page = c.get(reverse("incidents:postmortem", args=[7])).content.decode()
    assert 'id="pm-form"' not in page and "postmortem_editor.js" not in page
    response = c.post(reverse("incidents:postmortem-save", args=[7]), {**data, "body_what": "Late."}, headers=HX)
    assert "Not saved: This post-mortem is published" in response.content.decode()
    plain = c.post(reverse("incidents:postmortem-save", args=[7]), {**data, "body_what": "Late."}, follow=True)
    assert "This post-mortem is published; it can no longer be edited." in plain.content.decode()
    postmortem.refresh_from_db()
    assert {s["key"]: s["body"] for s in postmortem.sections}["what"] == "Written."


def test_banner_names_a_missing_failure_class_too(postmortem, incident, responder, make_client):
    Incident.objects.filter(pk=incident.pk).update(failure_class=None)
    fill(postmortem, Actor.person(responder))
    body = make_client(responder).get(reverse("incidents:postmortem", args=[7])).content.decode()
    assert "Publishing needs the incident's failure class set." in body
