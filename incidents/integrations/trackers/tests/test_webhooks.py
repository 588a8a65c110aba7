"""The three webhooks, fed the vendors' documented sample payloads signed with a test secret: a good
signature moves the action item (as the tracker, on the timeline); a forged one is a 401 with nothing written."""

import copy
import hashlib
import hmac
import json
import time

import pytest

from incidents.models import ActionItem, TimelineEntry

from .conftest import SECRETS

# Trimmed from the samples in GitHub's "Webhook events and payloads" (issues, action closed).
GITHUB_CLOSED = {
    "action": "closed",
    "issue": {
        "url": "https://api.github.com/repos/acme/ops/issues/42",
        "repository_url": "https://api.github.com/repos/acme/ops",
        "html_url": "https://github.com/acme/ops/issues/42",
        "id": 444500041,
        "node_id": "MDU6SXNzdWU0NDQ1MDAwNDE=",
        "number": 42,
        "title": "Add an eval case for refunds over $100",
        "user": {"login": "octocat", "id": 21031067, "type": "User", "site_admin": False},
        "labels": [],
        "state": "closed",
        "locked": False,
        "assignee": None,
        "assignees": [],
        "comments": 0,
        "created_at": "2026-12-01T15:20:18Z",
        "updated_at": "2026-12-02T01:20:18Z",
        "closed_at": "2026-12-02T01:20:18Z",
        "author_association": "OWNER",
        "body": "Action item from the post-mortem of INC-7",
        "state_reason": "completed",
    },
    "repository": {
        "id": 186853002,
        "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=",
        "name": "ops",
        "full_name": "acme/ops",
        "private": True,
        "owner": {"login": "acme", "id": 21031068, "type": "Organization"},
    },
    "sender": {"login": "octocat", "id": 21031067, "type": "User"},
}

# Shaped like Linear's documented data-change payload for an Issue update (Linear "Webhooks").
LINEAR_DONE = {
    "action": "update",
    "actor": {"id": "3e1c4e1c-8b6c-4f1a-9b1e-6b7f5c1d2e3f", "name": "Jane Doe", "type": "user"},
    "createdAt": "2026-12-02T01:20:18.000Z",
    "data": {
        "id": "2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9",
        "createdAt": "2026-12-01T15:20:18.000Z",
        "updatedAt": "2026-12-02T01:20:18.000Z",
        "number": 7,
        "title": "Add an eval case for refunds over $100",
        "priority": 0,
        "identifier": "ENG-7",
        "teamId": "9cfb482a-81e3-4154-b5b9-2c805e70a02d",
        "stateId": "4d2b6d7f-0f1e-4b8e-9c8d-4f3a2b1c0d9e",
        "state": {
            "id": "4d2b6d7f-0f1e-4b8e-9c8d-4f3a2b1c0d9e",
            "color": "#5e6ad2",
            "name": "Done",
            "type": "completed",
        },
        "team": {"id": "9cfb482a-81e3-4154-b5b9-2c805e70a02d", "key": "ENG", "name": "Engineering"},
        "labels": [],
        "url": "https://linear.app/acme/issue/ENG-7/add-an-eval-case",
    },
    "updatedFrom": {
        "updatedAt": "2026-12-01T15:20:18.000Z",
        "stateId": "1a2b3c4d-0f1e-4b8e-9c8d-4f3a2b1c0d9e",
        "completedAt": None,
    },
    "url": "https://linear.app/acme/issue/ENG-7/add-an-eval-case",
    "type": "Issue",
    "organizationId": "5a6b7c8d-0f1e-4b8e-9c8d-4f3a2b1c0d9e",
    "webhookTimestamp": 0,
    "webhookId": "000042e3-d123-4980-b49f-8e140eef9329",
}

# Trimmed from Jira Cloud's documented jira:issue_updated payload (issue, changelog).
JIRA_DONE = {
    "timestamp": 1764638418000,
    "webhookEvent": "jira:issue_updated",
    "issue_event_type_name": "issue_generic",
    "user": {
        "self": "https://acme.atlassian.net/rest/api/2/user?accountId=5b10a2844c20165700ede21g",
        "accountId": "5b10a2844c20165700ede21g",
        "displayName": "Jane Doe",
    },
    "issue": {
        "id": "10000",
        "self": "https://acme.atlassian.net/rest/api/2/issue/10000",
        "key": "OPS-24",
        "fields": {
            "summary": "Add an eval case for refunds over $100",
            "status": {
                "self": "https://acme.atlassian.net/rest/api/2/status/10001",
                "description": "",
                "name": "Done",
                "id": "10001",
                "statusCategory": {
                    "self": "https://acme.atlassian.net/rest/api/2/statuscategory/3",
                    "id": 3,
                    "key": "done",
                    "colorName": "green",
                    "name": "Done",
                },
            },
        },
    },
    "changelog": {
        "id": "10100",
        "items": [
            {
                "field": "status",
                "fieldtype": "jira",
                "fieldId": "status",
                "from": "10000",
                "fromString": "To Do",
                "to": "10001",
                "toString": "Done",
            }
        ],
    },
}


def _sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(client, tracker: str, payload: dict, *, secret: str | None = None, event: str = "issues", signature=None):
    body = json.dumps(payload).encode()
    digest = _sign(secret or SECRETS[tracker], body)
    headers = {
        "github": {"HTTP_X_HUB_SIGNATURE_256": f"sha256={digest}", "HTTP_X_GITHUB_EVENT": event},
        "linear": {"HTTP_LINEAR_SIGNATURE": digest, "HTTP_LINEAR_EVENT": "Issue"},
        "jira": {"HTTP_X_HUB_SIGNATURE": f"sha256={digest}"},
    }[tracker]
    if signature is not None:
        headers = {k: (signature if "SIGNATURE" in k else v) for k, v in headers.items()}
    return client.post(f"/api/v1/integrations/{tracker}/webhook", body, content_type="application/json", **headers)


def _linear(payload: dict, **changes) -> dict:
    payload = copy.deepcopy(payload)
    payload["webhookTimestamp"] = int(time.time() * 1000)
    payload.update(changes)
    return payload


def _reopened(payload: dict, tracker: str) -> dict:
    payload = copy.deepcopy(payload)
    if tracker == "github":
        payload["action"] = "reopened"
        payload["issue"].update(state="open", state_reason="reopened", closed_at=None)
    elif tracker == "linear":
        payload["data"]["state"] = {"id": "x", "color": "#e2e2e2", "name": "In Progress", "type": "started"}
    else:
        payload["issue"]["fields"]["status"] = {"name": "In Progress", "statusCategory": {"key": "indeterminate"}}
        payload["changelog"]["items"][0].update(fromString="Done", toString="In Progress")
    return payload


@pytest.fixture
def linked(trackers, item):
    def link(tracker: str) -> ActionItem:
        key = {"jira": "OPS-24", "linear": "ENG-7", "github": "42"}[tracker]
        ActionItem.objects.filter(pk=item.pk).update(
            tracker=tracker, issue_state="created", issue_key=key, issue_status="open", issue_url="https://x.example/1"
        )
        item.refresh_from_db()
        return item

    return link


SAMPLES = {"github": GITHUB_CLOSED, "linear": LINEAR_DONE, "jira": JIRA_DONE}


@pytest.mark.parametrize("tracker", ["github", "linear", "jira"])
def test_closing_then_reopening_the_issue_moves_the_action_item(client, linked, tracker):
    item = linked(tracker)
    closed = _linear(LINEAR_DONE) if tracker == "linear" else SAMPLES[tracker]
    response = _post(client, tracker, closed)
    assert response.status_code == 200, response.content
    item.refresh_from_db()
    assert item.status == ActionItem.Status.DONE and item.done_at is not None
    assert item.issue_status in ("closed", "Done")
    entry = TimelineEntry.objects.filter(data__action="issue_status").get()
    assert entry.actor_label == tracker and entry.actor is None and "now Done" in entry.body

    reopened = _reopened(closed, tracker)
    if tracker == "linear":
        reopened = _linear(reopened)
    assert _post(client, tracker, reopened).status_code == 200
    item.refresh_from_db()
    assert item.status == ActionItem.Status.OPEN and item.done_at is None
    assert TimelineEntry.objects.filter(data__action="issue_status").count() == 2


@pytest.mark.parametrize("tracker", ["github", "linear", "jira"])
def test_a_forged_signature_is_refused_and_nothing_written(client, linked, tracker):
    item = linked(tracker)
    payload = _linear(LINEAR_DONE) if tracker == "linear" else SAMPLES[tracker]
    entries = TimelineEntry.objects.count()
    wrong_secret = _post(client, tracker, payload, secret="not-the-secret")
    assert wrong_secret.status_code == 401 and "signature" in wrong_secret.json()["error"]
    assert _post(client, tracker, payload, signature="").status_code == 401
    item.refresh_from_db()
    assert item.status == ActionItem.Status.OPEN and TimelineEntry.objects.count() == entries


def test_a_replayed_linear_delivery_is_refused(client, linked):
    item = linked("linear")
    stale = _linear(LINEAR_DONE, webhookTimestamp=int(time.time() * 1000) - 5 * 60_000)
    response = _post(client, "linear", stale)
    assert response.status_code == 401 and "webhookTimestamp" in response.json()["error"]
    item.refresh_from_db()
    assert item.status == ActionItem.Status.OPEN


@pytest.mark.parametrize("tracker", ["github", "linear", "jira"])
def test_an_issue_no_action_item_has_is_ignored(client, trackers, item, tracker):
    payload = _linear(LINEAR_DONE) if tracker == "linear" else SAMPLES[tracker]
    response = _post(client, tracker, payload)
    assert response.status_code == 200 and response.json()["ignored"] is True
    item.refresh_from_db()
    assert item.status == ActionItem.Status.OPEN and not TimelineEntry.objects.filter(data__action="issue_status")


def test_events_that_leave_the_status_alone_are_ignored(client, linked):
    item = linked("github")
    labeled = {**GITHUB_CLOSED, "action": "labeled"}
    assert _post(client, "github", labeled).json()["ignored"] is True
    assert _post(client, "github", {"zen": "Design for failure.", "hook_id": 1}, event="ping").json()["ignored"]
    other_repo = copy.deepcopy(GITHUB_CLOSED)
    other_repo["repository"]["full_name"] = "someone/else"
    assert _post(client, "github", other_repo).json()["ignored"] is True
    comment_only = copy.deepcopy(JIRA_DONE)
    comment_only["changelog"]["items"] = [{"field": "description", "fromString": "a", "toString": "b"}]
    ActionItem.objects.filter(pk=item.pk).update(tracker="jira", issue_key="OPS-24")
    assert _post(client, "jira", comment_only).json()["ignored"] is True
    item.refresh_from_db()
    assert item.status == ActionItem.Status.OPEN


def test_closed_as_not_planned_is_wont_do(client, linked):
    item = linked("github")
    not_planned = copy.deepcopy(GITHUB_CLOSED)
    not_planned["issue"]["state_reason"] = "not_planned"
    assert _post(client, "github", not_planned).status_code == 200
    item.refresh_from_db()
    assert item.status == ActionItem.Status.WONT_DO


def test_a_signed_body_that_is_not_json_is_a_400(client, trackers):
    body = b"not json"
    response = client.post(
        "/api/v1/integrations/github/webhook",
        body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=f"sha256={_sign(SECRETS['github'], body)}",
        HTTP_X_GITHUB_EVENT="issues",
    )
    assert response.status_code == 400 and response.json()["detail"] == {"body": ["not JSON"]}


def test_a_webhook_without_a_secret_configured_is_not_there(client, no_trackers):
    assert _post(client, "github", GITHUB_CLOSED).status_code == 404
