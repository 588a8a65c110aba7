"""The post-mortem's writes over the API: start, attach traces, action items, review and publish, each
the same service as the page's button; bad input is a 400 naming the field with nothing written."""

import pytest

from core.actors import Actor
from incidents.models import ActionItem, PostMortem, TimelineEntry
from incidents.postmortems.tests.conftest import fill

pytestmark = pytest.mark.django_db

URL = "/api/v1/incidents/7/postmortem"


def test_a_responder_runs_a_post_mortem_to_published_over_the_api(client, responder, incident, trace):
    client.force_login(responder)
    started = client.post(f"{URL}/start", {}, content_type="application/json")
    assert started.status_code == 201, started.content
    assert started.json()["template"] == "sev1-agent"  # the SEV1 default
    assert [t["trace_id"] for t in started.json()["attached_traces"]] == [trace.trace_id]
    assert client.post(f"{URL}/start", {}, content_type="application/json").status_code in (400, 409)

    assert (
        client.delete(f"{URL}/traces", {"trace": trace.trace_id}, content_type="application/json").json()[
            "attached_traces"
        ]
        == []
    )
    again = client.post(f"{URL}/traces", {"trace": f"{trace.trace_id}@refund-bot"}, content_type="application/json")
    assert [t["agent"] for t in again.json()["attached_traces"]] == ["refund-bot"]

    item = client.post(
        f"{URL}/actions",
        {"title": "Cap refunds at $100 per session", "kind": "circuit_breaker", "owner": responder.username},
        content_type="application/json",
    )
    assert item.status_code == 201 and item.json()["owner"] == responder.username
    done = client.post(f"{URL}/actions/{item.json()['id']}/status", {"status": "done"}, content_type="application/json")
    assert done.json()["status"] == "done" and done.json()["done_at"]

    review = client.post(f"{URL}/status", {"status": "in_review"}, content_type="application/json")
    assert review.status_code == 200 and review.json()["status"] == "in_review"
    refused = client.post(f"{URL}/status", {"status": "published"}, content_type="application/json")
    assert refused.status_code in (400, 409) and "Empty" in refused.content.decode()  # names the empty sections
    client.post(f"{URL}/status", {"status": "draft"}, content_type="application/json")
    fill(PostMortem.objects.get(incident=incident), Actor.person(responder))
    client.post(f"{URL}/status", {"status": "in_review"}, content_type="application/json")
    published = client.post(f"{URL}/status", {"status": "published"}, content_type="application/json")
    assert published.status_code == 200 and published.json()["status"] == "published"
    assert TimelineEntry.objects.filter(incident=incident, body="Post-mortem published.").exists()


def test_bad_input_names_the_field_and_writes_nothing(client, responder, postmortem, trace):
    client.force_login(responder)
    cases = [
        ("actions", {"title": "", "kind": "eval_case"}, "title"),
        ("actions", {"title": "Pin the model", "kind": "improve_the_prompt_harder"}, "kind"),
        ("actions", {"title": "Pin the model", "kind": "version_pin", "owner": "nobody-here"}, "owner"),
        ("actions", {"title": "Pin the model", "kind": "version_pin", "due_date": "tomorrow"}, "due_date"),
        ("traces", {"trace": "f" * 32}, "trace"),
        ("status", {"status": "archived"}, "status"),
    ]
    for path, body, field in cases:
        response = client.post(f"{URL}/{path}", body, content_type="application/json")
        assert response.status_code == 400, (path, body, response.content)
        assert field in response.json()["detail"], response.json()
    assert not ActionItem.objects.exists()
    assert PostMortem.objects.get(pk=postmortem.pk).status == "draft"
    assert client.post(
        "/api/v1/incidents/7/postmortem/start", {"template": "nope"}, content_type="application/json"
    ).status_code in (400, 409)


def test_a_viewer_cannot_write_and_unknown_things_are_404(client, viewer, responder, postmortem):
    client.force_login(viewer)
    assert (
        client.post(f"{URL}/actions", {"title": "x", "kind": "canary"}, content_type="application/json").status_code
        == 403
    )
    client.force_login(responder)
    assert (
        client.post(f"{URL}/actions/999/status", {"status": "done"}, content_type="application/json").status_code == 404
    )
    assert client.post("/api/v1/incidents/999/postmortem/start", {}, content_type="application/json").status_code == 404
