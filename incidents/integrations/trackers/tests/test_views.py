"""The "Create in …" buttons on the post-mortem page and the API behind the same service: who may, what the
row shows (a link with the issue's status, or why it failed), and the refusals."""

from incidents.integrations.trackers.sending import action_item_issue_create
from incidents.models import ActionItem, Delivery

API = "/api/v1/incidents/7/postmortem/actions/{}/issue"
PAGE = "/incidents/7/postmortem/"


def test_a_responder_creates_the_issue_and_the_row_links_it(trackers, item, make_client, responder):
    client = make_client(responder)
    page = client.get(PAGE).content.decode()
    assert "Create in Jira" in page and "Create in Linear" in page and "Create in GitHub" in page

    response = client.post(
        f"/incidents/7/postmortem/actions/{item.pk}/issue/", {"tracker": "github"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "Creating in GitHub…" in response.content.decode()
    delivery = Delivery.objects.get()
    action_item_issue_create(item_id=item.pk, delivery_id=delivery.pk)

    page = client.get(PAGE).content.decode()
    assert 'href="https://github.com/acme/ops/issues/42"' in page and "GitHub 42" in page
    assert ">open</span>" in page
    assert "Create in GitHub" not in page  # one issue per item


def test_the_api_asks_for_the_issue_and_refuses_a_second(trackers, item, make_client, responder):
    client = make_client(responder)
    response = client.post(API.format(item.pk), {"tracker": "jira"}, content_type="application/json")
    assert response.status_code == 202, response.content
    assert response.json()["issue_state"] == "pending" and response.json()["tracker"] == "jira"
    again = client.post(API.format(item.pk), {"tracker": "linear"}, content_type="application/json")
    assert again.status_code == 409 and "already being created" in again.json()["error"]
    assert Delivery.objects.count() == 1


def test_bad_input_is_a_400_naming_the_field_and_nothing_written(trackers, item, make_client, responder):
    client = make_client(responder)
    for body in ({}, {"tracker": "trello"}, {"tracker": ["jira"]}):
        response = client.post(API.format(item.pk), body, content_type="application/json")
        assert response.status_code == 400 and "tracker" in response.json()["detail"], body
    missing = client.post(API.format(999999), {"tracker": "jira"}, content_type="application/json")
    assert missing.status_code == 404
    item.refresh_from_db()
    assert item.issue_state == "" and not Delivery.objects.exists()


def test_an_unconfigured_tracker_is_a_400(no_trackers, item, make_client, responder):
    response = make_client(responder).post(API.format(item.pk), {"tracker": "jira"}, content_type="application/json")
    assert response.status_code == 400 and "not configured" in response.json()["detail"]["tracker"][0]
    assert "Create in" not in make_client(responder).get(PAGE).content.decode()


def test_a_viewer_cannot_create_an_issue(trackers, item, make_client, viewer):
    client = make_client(viewer)
    assert client.post(API.format(item.pk), {"tracker": "jira"}, content_type="application/json").status_code == 403
    assert client.post(f"/incidents/7/postmortem/actions/{item.pk}/issue/", {"tracker": "jira"}).status_code == 403
    assert "Create in Jira" not in client.get(PAGE).content.decode()
    item.refresh_from_db()
    assert item.issue_state == "" and not Delivery.objects.exists()


def test_a_failure_shows_why_escaped_and_offers_a_retry(trackers, item, make_client, responder):
    trackers.answer("jira", 400, {"errorMessages": ["<script>alert(1)</script> project OPS is archived"]})
    client = make_client(responder)
    client.post(f"/incidents/7/postmortem/actions/{item.pk}/issue/", {"tracker": "jira"})
    action_item_issue_create(item_id=item.pk, delivery_id=Delivery.objects.get().pk)
    page = client.get(PAGE).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; project OPS is archived" in page
    assert "<script>alert(1)</script>" not in page
    assert "Retry in Jira" in page


def test_a_refusal_on_the_page_is_said_in_the_card(trackers, item, make_client, responder):
    ActionItem.objects.filter(pk=item.pk).update(tracker="jira", issue_state="created", issue_key="OPS-24")
    client = make_client(responder)
    response = client.post(
        f"/incidents/7/postmortem/actions/{item.pk}/issue/", {"tracker": "jira"}, HTTP_HX_REQUEST="true"
    )
    assert "already has an issue: OPS-24" in response.content.decode()
    plain = client.post(f"/incidents/7/postmortem/actions/{item.pk}/issue/", {"tracker": "jira"}, follow=True)
    assert "already has an issue: OPS-24" in plain.content.decode()
