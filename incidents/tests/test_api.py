import pytest

from incidents.models import Incident, RunbookStep, TimelineEntry

pytestmark = pytest.mark.django_db

URL = "/api/v1/incidents"


def payload(**overrides):
    data = {
        "title": "Refund agent looping",
        "severity": "SEV1",
        "failure_class": "runaway-loop",
        "agents": ["refund-bot"],
        "traces": ["a" * 32],
        "summary": "It loops.",
    }
    data.update(overrides)
    return data


def test_responder_declares_through_the_api(responder, make_client, traced_agent):
    c = make_client(responder)
    response = c.post(URL, payload(), content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["number"] == 1 and body["ref"] == "INC-1" and body["severity"] == "SEV1"
    assert body["commander"] == responder.username and body["status"] == "declared"
    assert [a["slug"] for a in body["agents"]] == ["refund-bot"] and body["agents"][0]["state"] == "active"
    assert [t["trace_id"] for t in body["traces"]] == ["a" * 32]
    assert body["timeline"][0]["kind"] == "declared" and body["runbook"]
    assert body["url"].endswith("/incidents/1/")

    read = c.get(f"{URL}/1").json()
    assert read["declared_at"] and read["contained_at"] is None
    assert read["close_blockers"]


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("severity", {"severity": "SEV4"}),
        ("failure_class", {"failure_class": "no-such-class"}),
        ("agents", {"agents": ["ghost"]}),
        ("traces", {"traces": ["f" * 32]}),
        ("commander", {"commander": "nobody"}),
        ("title", {"title": ""}),
    ],
)
def test_bad_input_is_400_naming_the_field_and_writes_nothing(responder, make_client, traced_agent, field, overrides):
    response = make_client(responder).post(URL, payload(**overrides), content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert Incident.objects.count() == RunbookStep.objects.count() == TimelineEntry.objects.count() == 0


def test_viewer_cannot_declare(viewer, make_client, traced_agent):
    response = make_client(viewer).post(URL, payload(), content_type="application/json")
    assert response.status_code == 403
    assert Incident.objects.count() == 0


def test_anonymous_is_refused(client, traced_agent):
    assert client.post(URL, payload(), content_type="application/json").status_code in (401, 403)
    assert Incident.objects.count() == 0


def test_viewer_reads_and_unknown_is_404(viewer, make_client, make_incident):
    make_incident()
    c = make_client(viewer)
    assert c.get(f"{URL}/1").status_code == 200
    response = c.get(f"{URL}/99")
    assert response.status_code == 404 and "INC-99" in response.json()["error"]
