"""The incidents API beyond declare and read: the list (filters, keyset pages), status, severity,
commander, notes and the timeline, each with its roles and its bad input (4xx naming the field,
nothing written)."""

import pytest

from incidents.models import Incident, TimelineEntry, TimelineKind

pytestmark = pytest.mark.django_db

URL = "/api/v1/incidents"


def test_viewer_lists_incidents_newest_first_with_filters(client, viewer, make_incident):
    first = make_incident(severity="SEV1")
    second = make_incident(severity="SEV3")
    client.force_login(viewer)
    body = client.get(URL).json()
    assert [i["number"] for i in body["results"]] == [second.number, first.number]
    assert body["results"][0]["ref"] == f"INC-{second.number}"
    assert [i["number"] for i in client.get(URL, {"severity": "SEV1"}).json()["results"]] == [first.number]
    Incident.objects.filter(pk=first.pk).update(status="closed")
    assert [i["number"] for i in client.get(URL, {"open": "true"}).json()["results"]] == [second.number]
    assert [i["number"] for i in client.get(URL, {"status": "closed"}).json()["results"]] == [first.number]


def test_incident_pages_walk_each_incident_once(client, viewer, make_incident):
    numbers = [make_incident().number for _ in range(5)]
    client.force_login(viewer)
    seen, cursor = [], ""
    while True:
        body = client.get(URL, {"limit": 2, "cursor": cursor}).json()
        seen += [i["number"] for i in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(numbers, reverse=True)


@pytest.mark.parametrize(
    ("query", "field"),
    [({"status": "nope"}, "status"), ({"severity": "SEV9"}, "severity"), ({"open": "maybe"}, "open")],
)
def test_bad_list_filters_are_400_naming_them(client, viewer, query, field):
    client.force_login(viewer)
    response = client.get(URL, query)
    assert response.status_code == 400 and field in response.json()["detail"]


def test_responder_moves_the_status_forward_with_a_note(client, responder, make_incident):
    incident = make_incident()
    client.force_login(responder)
    response = client.post(
        f"{URL}/{incident.number}/status",
        {"status": "investigating", "note": "looking"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "investigating"
    entry = incident.timeline.filter(kind=TimelineKind.STATUS).last()
    assert "looking" in entry.body and entry.actor == responder


def test_moving_the_status_back_is_409_and_writes_nothing(client, responder, make_incident):
    incident = make_incident()
    client.force_login(responder)
    client.post(f"{URL}/{incident.number}/status", {"status": "contained"}, content_type="application/json")
    entries = TimelineEntry.objects.count()
    response = client.post(
        f"{URL}/{incident.number}/status", {"status": "investigating"}, content_type="application/json"
    )
    assert response.status_code == 409 and "forward" in response.json()["error"]
    assert TimelineEntry.objects.count() == entries
    assert Incident.objects.get(pk=incident.pk).status == "contained"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("status", {"status": "sideways"}, "status"),
        ("status", {}, "status"),
        ("status", {"status": "resolved", "note": "x" * 20_001}, "note"),
        ("severity", {"severity": "SEV0"}, "severity"),
        ("commander", {"username": ""}, "username"),
        ("commander", {"username": "nobody"}, "username"),
        ("notes", {"body": ""}, "body"),
        ("notes", {}, "body"),
    ],
)
def test_bad_writes_are_400_naming_the_field_and_write_nothing(client, responder, make_incident, path, body, field):
    incident = make_incident()
    entries = TimelineEntry.objects.count()
    client.force_login(responder)
    response = client.post(f"{URL}/{incident.number}/{path}", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"]
    assert TimelineEntry.objects.count() == entries
    fresh = Incident.objects.get(pk=incident.pk)
    assert (fresh.status, fresh.severity, fresh.commander_id) == (
        incident.status,
        incident.severity,
        incident.commander_id,
    )


def test_severity_change(client, responder, make_incident):
    incident = make_incident(severity="SEV3")
    client.force_login(responder)
    response = client.post(f"{URL}/{incident.number}/severity", {"severity": "SEV1"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["severity"] == "SEV1"
    assert incident.timeline.filter(kind=TimelineKind.SEVERITY).exists()


def test_command_is_handed_to_a_responder_and_never_to_a_viewer(client, responder, make_user, make_incident):
    incident = make_incident()
    other = make_user("responder", username="dana")
    make_user("viewer", username="vic")
    client.force_login(responder)
    response = client.post(f"{URL}/{incident.number}/commander", {"username": "dana"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["commander"] == "dana"
    assert Incident.objects.get(pk=incident.pk).commander == other
    again = client.post(f"{URL}/{incident.number}/commander", {"username": "dana"}, content_type="application/json")
    assert again.status_code == 409
    refused = client.post(f"{URL}/{incident.number}/commander", {"username": "vic"}, content_type="application/json")
    assert refused.status_code == 400 and "username" in refused.json()["detail"]
    taken = client.post(f"{URL}/{incident.number}/take-command")
    assert taken.status_code == 200 and taken.json()["commander"] == responder.username


def test_viewer_reads_but_cannot_write(client, viewer, make_incident):
    incident = make_incident()
    client.force_login(viewer)
    assert client.get(f"{URL}/{incident.number}/timeline").status_code == 200
    assert client.get(f"{URL}/{incident.number}/notes").status_code == 200
    for path, body in [
        ("status", {"status": "resolved"}),
        ("severity", {"severity": "SEV1"}),
        ("notes", {"body": "hi"}),
        ("commander", {"username": viewer.username}),
    ]:
        response = client.post(f"{URL}/{incident.number}/{path}", body, content_type="application/json")
        assert response.status_code == 403, path
    assert not incident.timeline.filter(kind=TimelineKind.NOTE).exists()


def test_notes_are_added_and_listed_in_order_and_the_timeline_pages(client, responder, make_incident):
    incident = make_incident()
    client.force_login(responder)
    for text in ("first **note**", "second", "third"):
        response = client.post(f"{URL}/{incident.number}/notes", {"body": text}, content_type="application/json")
        assert response.status_code == 201 and response.json()["kind"] == "note"
    notes = client.get(f"{URL}/{incident.number}/notes").json()
    assert [n["body"] for n in notes["results"]] == ["first **note**", "second", "third"]
    seen, cursor = [], ""
    while True:
        page = client.get(f"{URL}/{incident.number}/timeline", {"limit": 2, "cursor": cursor}).json()
        seen += [e["id"] for e in page["results"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(incident.timeline.order_by("id").values_list("id", flat=True))


def test_unknown_incident_is_404(client, responder):
    client.force_login(responder)
    assert client.get(f"{URL}/999/timeline").status_code == 404
    assert client.post(f"{URL}/999/status", {"status": "resolved"}, content_type="application/json").status_code == 404


def test_runbook_steps_are_ticked_and_unticked(client, responder, viewer, make_incident):
    incident = make_incident()
    step = incident.runbook_steps.first()
    url = f"{URL}/{incident.number}/runbook/{step.pk}"
    client.force_login(viewer)
    assert client.post(url, {"done": True}, content_type="application/json").status_code == 403
    client.force_login(responder)
    body = client.post(url, {"done": True}, content_type="application/json").json()
    assert body["done_at"] and body["done_by"] == responder.username
    again = client.post(url, {"done": True}, content_type="application/json")
    assert again.status_code == 400 and "step" in again.json()["detail"]
    assert client.post(url, {"done": False}, content_type="application/json").json()["done_at"] is None
    bad = client.post(url, {"done": "perhaps"}, content_type="application/json")
    assert bad.status_code == 400 and "done" in bad.json()["detail"]
    assert (
        client.post(f"{URL}/{incident.number}/runbook/999999", {}, content_type="application/json").status_code == 404
    )
    assert incident.timeline.filter(kind=TimelineKind.RUNBOOK).count() == 2
