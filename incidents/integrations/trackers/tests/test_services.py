"""Creating an action item's issue: the request, the task's call to each tracker (a local server checks it
against the vendor's schema), and what the item and the delivery log say afterwards."""

import pytest
from celery.exceptions import Retry
from django.core.exceptions import ValidationError

from core.actors import Actor
from core.errors import Conflict
from incidents.integrations.trackers import services
from incidents.integrations.trackers.clients import TrackerUnavailable
from incidents.integrations.trackers.selectors import issue_errors
from incidents.integrations.trackers.sending import action_item_issue_create
from incidents.integrations.trackers.tasks import action_item_issue_create_task
from incidents.models import ActionItem, Delivery, TimelineEntry

LINEAR_TEAM = "9cfb482a-81e3-4154-b5b9-2c805e70a02d"


def _request(item, tracker, responder):
    return services.action_item_issue_request(item=item, tracker=tracker, actor=Actor.person(responder))


def _create(item, delivery, final=True):
    return action_item_issue_create(item_id=item.pk, delivery_id=delivery.pk, final=final)


@pytest.mark.parametrize(
    ("tracker", "key", "url", "status", "target"),
    [
        ("jira", "OPS-24", "/browse/OPS-24", "To Do", "jira:OPS"),
        ("linear", "ENG-7", "https://linear.app/acme/issue/ENG-7/add-an-eval-case", "Todo", None),
        ("github", "42", "https://github.com/acme/ops/issues/42", "open", "github:acme/ops"),
    ],
)
def test_issue_is_created_in_the_tracker_and_linked_on_the_item(
    trackers, item, responder, django_capture_on_commit_callbacks, tracker, key, url, status, target
):
    with django_capture_on_commit_callbacks() as callbacks:
        delivery = _request(item, tracker, responder)
    assert len(callbacks) == 1  # the task is queued once the request commits
    item.refresh_from_db()
    assert item.issue_state == ActionItem.IssueState.PENDING
    assert delivery.status == Delivery.Status.PENDING and delivery.channel == "tracker"
    assert delivery.target == (target or f"linear:{LINEAR_TEAM}")

    assert _create(item, delivery) is True

    (sent,) = trackers.requests
    assert sent["vendor"] == tracker and sent["errors"] == []
    item.refresh_from_db()
    assert (item.tracker, item.issue_state, item.issue_key, item.issue_status) == (tracker, "created", key, status)
    assert item.issue_url.endswith(url)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT and delivery.detail["issue_key"] == key
    assert all(secret not in str(delivery.detail) + delivery.target for secret in ("jira-token-123", "ghp_testtoken"))
    entry = TimelineEntry.objects.filter(incident=item.postmortem.incident, data__action="issue_created").get()
    assert key in entry.body and entry.actor_label == tracker


def test_jira_issue_says_what_to_do_and_links_back_in_adf(trackers, item, responder):
    _create(item, _request(item, "jira", responder))
    fields = trackers.requests[0]["body"]["fields"]
    assert fields["project"] == {"key": "OPS"} and fields["issuetype"] == {"name": "Task"}
    assert fields["summary"] == "Add an eval case for refunds over $100"
    links = [
        mark["attrs"]["href"]
        for paragraph in fields["description"]["content"]
        for node in paragraph["content"]
        for mark in node.get("marks", [])
    ]
    assert links == [
        f"https://firebreak.example.com/incidents/7/postmortem/#action-{item.pk}",
        "https://firebreak.example.com/incidents/7/",
    ]


def test_linear_and_github_descriptions_link_the_postmortem_and_incident(trackers, item, responder):
    _create(item, _request(item, "linear", responder))
    linear = trackers.requests[0]["body"]["variables"]["input"]
    assert linear["teamId"] == LINEAR_TEAM
    assert "https://firebreak.example.com/incidents/7/postmortem/" in linear["description"]
    other = services.action_item_issue_request
    second = ActionItem.objects.create(postmortem=item.postmortem, title="Pin the model version", kind="version_pin")
    _create(second, other(item=second, tracker="github", actor=Actor.person(responder)))
    github = trackers.requests[1]["body"]
    assert github["title"] == "Pin the model version"
    assert "INC-7" in github["body"] and "https://firebreak.example.com/incidents/7/" in github["body"]


def test_a_long_title_is_cut_to_jiras_summary_limit(trackers, postmortem, responder):
    long = ActionItem.objects.create(postmortem=postmortem, title="x" * 300, kind="canary")
    assert _create(long, _request(long, "jira", responder)) is True
    assert len(trackers.requests[0]["body"]["fields"]["summary"]) == 255


def test_a_refusal_fails_the_item_with_the_trackers_words(trackers, item, responder):
    trackers.answer("jira", 400, {"errorMessages": [], "errors": {"project": "valid project is required"}})
    delivery = _request(item, "jira", responder)
    assert _create(item, delivery) is False
    item.refresh_from_db()
    delivery.refresh_from_db()
    assert item.issue_state == "failed" and item.issue_key == ""
    assert delivery.status == "failed" and "project: valid project is required" in delivery.error
    assert issue_errors(postmortem=item.postmortem) == {item.pk: delivery.error}


def test_linear_graphql_errors_fail_the_item(trackers, item, responder):
    trackers.answer("linear", 200, {"errors": [{"message": "Entity not found: Team"}], "data": None})
    delivery = _request(item, "linear", responder)
    assert _create(item, delivery) is False
    delivery.refresh_from_db()
    assert "Entity not found: Team" in delivery.error


def test_an_upstream_5xx_is_retried_then_given_up(trackers, item, responder):
    trackers.answer("github", 502, {"message": "Server Error"})
    delivery = _request(item, "github", responder)
    with pytest.raises(TrackerUnavailable):
        _create(item, delivery, final=False)
    item.refresh_from_db()
    delivery.refresh_from_db()
    assert item.issue_state == "pending" and delivery.status == "pending" and delivery.attempts == 1
    assert "502" in delivery.error
    assert _create(item, delivery, final=True) is False
    item.refresh_from_db()
    delivery.refresh_from_db()
    assert item.issue_state == "failed" and delivery.status == "failed" and "gave up after 2 tries" in delivery.error


def test_an_unreachable_tracker_is_retryable(trackers, settings, item, responder):
    settings.FIREBREAK_GITHUB_API_URL = "http://127.0.0.1:9"  # nothing listens on discard
    delivery = _request(item, "github", responder)
    with pytest.raises(TrackerUnavailable, match="cannot reach GitHub"):
        _create(item, delivery, final=False)


def test_the_task_retries_while_the_tracker_is_down(trackers, item, responder):
    trackers.answer("jira", 503, {"errorMessages": ["down for maintenance"]})
    delivery = _request(item, "jira", responder)
    with pytest.raises(Retry):
        action_item_issue_create_task.apply(args=(item.pk, delivery.pk), throw=True)
    trackers.answer("jira", 201, {"id": "1", "key": "OPS-25", "self": "x"})
    assert action_item_issue_create_task.apply(args=(item.pk, delivery.pk)).get() is True
    item.refresh_from_db()
    assert item.issue_key == "OPS-25"


def test_creating_twice_is_refused_unless_the_first_failed(trackers, item, responder):
    delivery = _request(item, "jira", responder)
    with pytest.raises(Conflict, match="already being created"):
        _request(item, "github", responder)
    _create(item, delivery)
    with pytest.raises(Conflict, match="already has an issue: OPS-24"):
        _request(item, "jira", responder)
    assert Delivery.objects.count() == 1

    other = ActionItem.objects.create(postmortem=item.postmortem, title="Add a canary", kind="canary")
    trackers.answer("github", 422, {"message": "Validation Failed"})
    _create(other, _request(other, "github", responder))
    other.refresh_from_db()
    assert other.issue_state == "failed"
    trackers.answer("github", 201, {"number": 43, "html_url": "https://github.com/acme/ops/issues/43", "state": "open"})
    _create(other, _request(other, "github", responder))
    other.refresh_from_db()
    assert (other.issue_state, other.issue_key) == ("created", "43")
    assert issue_errors(postmortem=item.postmortem) == {}


def test_an_unknown_or_unconfigured_tracker_is_refused_and_nothing_written(no_trackers, item, responder):
    with pytest.raises(ValidationError) as unknown:
        _request(item, "trello", responder)
    assert "tracker" in unknown.value.message_dict
    with pytest.raises(ValidationError) as off:
        _request(item, "jira", responder)
    assert "not configured" in off.value.message_dict["tracker"][0]
    item.refresh_from_db()
    assert item.issue_state == "" and not Delivery.objects.exists()


def test_a_non_web_issue_url_is_not_kept(trackers, item, responder):
    trackers.answer("github", 201, {"number": 44, "html_url": "javascript:alert(1)", "state": "open"})
    _create(item, _request(item, "github", responder))
    item.refresh_from_db()
    assert item.issue_key == "44" and item.issue_url == ""
