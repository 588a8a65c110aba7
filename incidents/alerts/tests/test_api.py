"""The alerts API: list (filters, newest first, keyset pages), read, acknowledge, resolve (409 when the
transition does not apply), roles, and bad input answered 4xx naming the field with nothing written."""

import pytest

from agents.keys.services import api_key_create
from incidents.alerts.api import AlertSerializer
from incidents.models import Alert

pytestmark = pytest.mark.django_db

URL = "/api/v1/alerts"


def bearer(user):
    _, raw = api_key_create(user=user, scopes=["api"])
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_viewer_lists_alerts_newest_first_with_a_person_key(client, viewer, make_alert, make_agent):
    older, newer = make_alert(title="first"), make_alert(title="second")
    body = client.get(URL, **bearer(viewer)).json()
    assert [a["id"] for a in body["results"]] == [newer.pk, older.pk]
    assert body["next_cursor"] is None
    first = body["results"][0]
    assert first["agent"] == "refund-bot" and first["status"] == "open" and first["trace_id"] == "a" * 32


def test_filters_by_agent_and_status(client, viewer, make_alert, make_agent):
    other = make_agent("other-bot")
    mine = make_alert()
    make_alert(agent=other)
    make_alert(status=Alert.Status.RESOLVED)
    client.force_login(viewer)
    ids = [a["id"] for a in client.get(URL, {"agent": "refund-bot", "status": "open"}).json()["results"]]
    assert ids == [mine.pk]
    assert [a["agent"] for a in client.get(URL, {"agent": "other-bot"}).json()["results"]] == ["other-bot"]


def test_pages_walk_every_alert_once(client, viewer, make_alert):
    made = [make_alert().pk for _ in range(5)]
    client.force_login(viewer)
    seen, cursor = [], ""
    for _ in range(5):
        body = client.get(URL, {"limit": 2, "cursor": cursor}).json()
        seen += [a["id"] for a in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(made, reverse=True)


@pytest.mark.parametrize(
    ("query", "field"),
    [({"status": "bogus"}, "status"), ({"limit": 0}, "limit"), ({"limit": 999}, "limit"), ({"cursor": "x1"}, "cursor")],
)
def test_bad_query_is_400_naming_the_parameter(client, viewer, make_alert, query, field):
    client.force_login(viewer)
    response = client.get(URL, query)
    assert response.status_code == 400
    assert field in response.json()["detail"]


def test_read_one_alert_and_404(client, viewer, make_alert):
    alert = make_alert(title="Loop on search")
    client.force_login(viewer)
    assert client.get(f"{URL}/{alert.pk}").json()["title"] == "Loop on search"
    response = client.get(f"{URL}/{alert.pk + 100}")
    assert response.status_code == 404 and "no alert" in response.json()["error"]


def test_responder_acknowledges_then_resolves(client, responder, make_alert):
    alert = make_alert()
    headers = bearer(responder)
    body = client.post(f"{URL}/{alert.pk}/acknowledge", **headers).json()
    assert body["status"] == "acknowledged" and body["handled_by"] == responder.username
    body = client.post(f"{URL}/{alert.pk}/resolve", **headers).json()
    assert body["status"] == "resolved"
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED


def test_a_transition_that_does_not_apply_is_409_and_writes_nothing(client, responder, make_alert):
    resolved = make_alert(status=Alert.Status.RESOLVED, handled_by="someone")
    client.force_login(responder)
    for action in ("acknowledge", "resolve"):
        response = client.post(f"{URL}/{resolved.pk}/{action}")
        assert response.status_code == 409, response.content
        assert response.json()["error"]
    resolved.refresh_from_db()
    assert resolved.status == Alert.Status.RESOLVED and resolved.handled_by == "someone"


def test_viewer_cannot_acknowledge(client, viewer, make_alert):
    alert = make_alert()
    response = client.post(f"{URL}/{alert.pk}/acknowledge", **bearer(viewer))
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN


def test_an_agent_key_and_no_key_are_refused(client, make_alert, traced_agent):
    make_alert()
    _, agent_raw = api_key_create(agent=traced_agent, scopes=["ingest", "gate"])
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {agent_raw}").status_code == 403
    assert client.get(URL).status_code in (401, 403)


def test_an_alert_without_an_agent_serializes_with_a_null_agent(make_alert):
    alert = make_alert()
    alert.agent = None
    assert AlertSerializer(alert).data["agent"] is None
