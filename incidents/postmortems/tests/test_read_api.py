"""GET /api/v1/incidents/<n>/postmortem and /postmortem/export.md: what the page shows, as JSON and as the
page's own Markdown export."""

import pytest
from django.urls import reverse

from core.actors import Actor
from incidents.postmortems import services
from incidents.postmortems.tests.conftest import XSS

pytestmark = pytest.mark.django_db

URL = "/api/v1/incidents/7/postmortem"


def test_viewer_reads_sections_traces_items_and_status(client, viewer, responder, postmortem):
    actor = Actor.person(responder)
    services.postmortem_section_save(postmortem=postmortem, key="what", body=f"It refunded {XSS}", actor=actor)
    services.action_item_add(postmortem=postmortem, title="Refund cap", kind="circuit_breaker", actor=actor)
    services.postmortem_trace_attach(postmortem=postmortem, trace=postmortem.incident.traces.first(), actor=actor)
    client.force_login(viewer)
    body = client.get(URL).json()
    assert body["incident"] == 7 and body["status"] == "draft"
    what = next(s for s in body["sections"] if s["key"] == "what")
    assert what["body"] == f"It refunded {XSS}" and what["hash"]  # Markdown as stored: a client escapes it
    assert [t["trace_id"] for t in body["attached_traces"]] == ["a" * 32]
    assert [(i["title"], i["status"]) for i in body["action_items"]] == [("Refund cap", "open")]
    assert body["publishable"] is False and body["empty_sections"]


def test_export_is_the_same_markdown_as_the_page(client, viewer, postmortem):
    client.force_login(viewer)
    api = client.get(f"{URL}/export.md")
    page = client.get(reverse("incidents:postmortem-export", args=[7]))
    assert api.status_code == 200 and api["Content-Type"].startswith("text/markdown")
    assert api.content == page.content
    assert api["Content-Disposition"] == 'attachment; filename="INC-7-postmortem.md"'


def test_no_post_mortem_or_no_incident_is_404(client, viewer, incident):
    client.force_login(viewer)
    for url in (URL, f"{URL}/export.md", "/api/v1/incidents/99/postmortem"):
        response = client.get(url)
        assert response.status_code == 404 and response.json()["error"], url


def test_export_refusal_reads_as_text_to_a_markdown_client(client, incident, viewer):
    client.force_login(viewer)
    response = client.get(f"{URL}/export.md", HTTP_ACCEPT="text/markdown")
    assert response.status_code == 404 and b"no post-mortem" in response.content


def test_needs_a_login(client, postmortem):
    assert client.get(URL).status_code in (401, 403)
