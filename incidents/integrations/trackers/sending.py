"""The Celery task's work: create the requested issue in the tracker and record how it went.

Kept apart from ``services`` (which queues the task) so the task module can import it without a circle.
"""

from urllib.parse import urljoin

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from core.actors import Actor
from incidents.integrations.trackers import clients
from incidents.integrations.trackers.clients import IssueText, TrackerRefused, TrackerUnavailable
from incidents.models import ActionItem, Delivery, TimelineKind
from incidents.notifications.deliveries import delivery_failed, delivery_sent
from incidents.services import timeline_record


def _absolute(path: str) -> str:
    return urljoin(settings.FIREBREAK_BASE_URL.rstrip("/") + "/", path.lstrip("/"))


def _issue_text(item: ActionItem) -> IssueText:
    incident = item.postmortem.incident
    return IssueText(
        title=item.title,
        lines=[
            f"Action item from the post-mortem of {incident.ref} “{incident.title}” ({item.get_kind_display()}).",
            "Close this issue when it is done: Firebreak marks the action item done.",
        ],
        links=[
            ("Post-mortem", _absolute(reverse("incidents:postmortem", args=[incident.number]) + f"#action-{item.pk}")),
            ("Incident", _absolute(reverse("incidents:incident-detail", args=[incident.number]))),
        ],
    )


@transaction.atomic
def action_item_issue_failed(*, item_id: int, delivery_id: int, error: str) -> None:
    ActionItem.objects.filter(pk=item_id, issue_state=ActionItem.IssueState.PENDING).update(
        issue_state=ActionItem.IssueState.FAILED
    )
    delivery = Delivery.objects.filter(pk=delivery_id).first()
    if delivery is not None:
        delivery_failed(delivery=delivery, error=error)


@transaction.atomic
def _created(*, item: ActionItem, delivery: Delivery, issue: clients.CreatedIssue) -> None:
    locked = ActionItem.objects.select_for_update().select_related("postmortem__incident").get(pk=item.pk)
    locked.issue_state = ActionItem.IssueState.CREATED
    # The URL comes from outside and becomes a link: only a web address is kept (never javascript:).
    url = issue.url[:500] if issue.url.startswith(("https://", "http://")) else ""
    locked.issue_key, locked.issue_url, locked.issue_status = issue.key[:100], url, issue.status[:100]
    locked.save(update_fields=["issue_state", "issue_key", "issue_url", "issue_status"])
    delivery_sent(delivery=delivery, detail={"issue_key": issue.key, "issue_url": issue.url})
    label = clients.LABELS[locked.tracker]
    timeline_record(
        incident=locked.postmortem.incident,
        kind=TimelineKind.POSTMORTEM,
        body=f"Action item “{locked.title}” is now {label} issue {issue.key}.",
        actor=Actor.system(locked.tracker),
        data={"action": "issue_created", "action_item": locked.pk, "tracker": locked.tracker, "key": issue.key},
    )


def action_item_issue_create(*, item_id: int, delivery_id: int, final: bool = True) -> bool:
    """Create the requested issue in the tracker (the task's work; the HTTP call is outside any transaction).

    True when created (the item holds key, URL and status; the Delivery is sent). A refusal marks the
    item and the Delivery failed with the tracker's words. When the tracker is unavailable, raises
    TrackerUnavailable for the task to retry (the Delivery stays pending, the attempt counted) unless
    ``final``: then both are failed. An item no longer waiting for an issue is left alone (False).
    """
    item = ActionItem.objects.select_related("postmortem__incident").filter(pk=item_id).first()
    delivery = Delivery.objects.filter(pk=delivery_id).first()
    if item is None or delivery is None or item.issue_state != ActionItem.IssueState.PENDING:
        return False
    try:
        issue = clients.issue_create(tracker=item.tracker, text=_issue_text(item))
    except TrackerRefused as exc:
        action_item_issue_failed(item_id=item_id, delivery_id=delivery_id, error=str(exc))
        return False
    except TrackerUnavailable as exc:
        if final:
            action_item_issue_failed(
                item_id=item_id, delivery_id=delivery_id, error=f"{exc} (gave up after {delivery.attempts + 1} tries)"
            )
            return False
        delivery_failed(delivery=delivery, error=str(exc), retrying=True)
        raise
    _created(item=item, delivery=delivery, issue=issue)
    return True
