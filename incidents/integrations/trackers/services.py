"""Writes for action items in the team's tracker: ask for an issue, create it (the Celery task), keep its status.

- ``action_item_issue_request``: a responder asks; the item becomes "creating", a pending Delivery is
  logged and the task is queued once the transaction commits.
- ``action_item_issue_create``: the task's work: one call to the tracker, then the item holds the issue's
  key, URL and status (or "failed", with why on the Delivery).
- ``action_item_issue_sync``: a verified webhook says the issue was closed or reopened; the item follows,
  as ``Actor.system("<tracker>")``, with a timeline entry. Firebreak never writes back to the tracker, so
  nothing it does here can echo.
"""

import logging

from celery.exceptions import CeleryError
from django.core.exceptions import ValidationError
from django.db import transaction
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from core.actors import Actor
from core.errors import Conflict
from incidents.integrations.trackers import clients
from incidents.integrations.trackers.sending import action_item_issue_failed
from incidents.integrations.trackers.tasks import action_item_issue_create_task
from incidents.integrations.trackers.webhooks import StatusChange
from incidents.models import ActionItem, Delivery, TimelineKind
from incidents.notifications.deliveries import delivery_record
from incidents.postmortems.services import action_item_status_set
from incidents.services import timeline_record

logger = logging.getLogger(__name__)

EVENT = "action_item.issue"


def _enqueue(item_id: int, delivery_id: int) -> None:
    try:
        action_item_issue_create_task.delay(item_id, delivery_id)
    except (KombuError, CeleryError, RedisError, OSError) as exc:
        # The broker is down: say so on the row instead of leaving it "creating" for ever; it can be retried.
        logger.warning("could not queue the issue of action item %s: %s", item_id, type(exc).__name__)
        action_item_issue_failed(
            item_id=item_id, delivery_id=delivery_id, error="could not queue the request (Redis unavailable)"
        )


@transaction.atomic
def action_item_issue_request(*, item: ActionItem, tracker: str, actor: Actor) -> Delivery:
    """Ask for an issue for ``item`` in ``tracker``; the Celery task creates it after commit.

    Raises ValidationError keyed ``tracker`` for a tracker that is unknown or not configured, and
    Conflict when the item already has an issue or one is being created (a failed one may be retried).
    Writes the item ("creating") and a pending Delivery (channel "tracker", target "jira:OPS"…).
    """
    configured = clients.trackers_configured()
    if tracker not in clients.TRACKERS:
        raise ValidationError({"tracker": f"Unknown tracker “{tracker}”; one of: {', '.join(clients.TRACKERS)}."})
    if tracker not in configured:
        raise ValidationError(
            {"tracker": f"{clients.LABELS[tracker]} is not configured here; set up: {', '.join(configured) or 'none'}."}
        )
    locked = ActionItem.objects.select_for_update().select_related("postmortem__incident").get(pk=item.pk)
    if locked.issue_state == ActionItem.IssueState.CREATED:
        raise Conflict(f"This action item already has an issue: {locked.issue_key} in {locked.get_tracker_display()}.")
    if locked.issue_state == ActionItem.IssueState.PENDING:
        raise Conflict(f"An issue for this action item is already being created in {locked.get_tracker_display()}.")
    locked.tracker = tracker
    locked.issue_state = ActionItem.IssueState.PENDING
    locked.issue_key = locked.issue_url = locked.issue_status = ""
    locked.save(update_fields=["tracker", "issue_state", "issue_key", "issue_url", "issue_status"])
    delivery = delivery_record(
        channel=Delivery.Channel.TRACKER,
        target=clients.tracker_target(tracker),
        event=EVENT,
        incident=locked.postmortem.incident,
        detail={"action_item": locked.pk, "tracker": tracker, "requested_by": actor.label},
    )
    item_id, delivery_id = locked.pk, delivery.pk
    transaction.on_commit(lambda: _enqueue(item_id, delivery_id))
    item.tracker, item.issue_state, item.issue_key, item.issue_url, item.issue_status = (
        locked.tracker,
        locked.issue_state,
        "",
        "",
        "",
    )
    return delivery


@transaction.atomic
def action_item_issue_sync(*, tracker: str, change: StatusChange) -> ActionItem | None:
    """Follow the tracker: closed there → done (or won't do, for "not planned"/canceled); reopened → open.

    Acts as ``Actor.system(tracker)`` and puts a timeline entry on the incident when the status moves.
    The issue's status name is stored either way. None when no action item has this issue (ignored).
    """
    item = (
        ActionItem.objects.select_for_update()
        .select_related("postmortem__incident")
        .filter(tracker=tracker, issue_key=change.key)
        .first()
    )
    if item is None:
        return None
    actor = Actor.system(tracker)
    finished = (ActionItem.Status.DONE, ActionItem.Status.WONT_DO)
    target: str | None = None
    if change.closed:
        wanted = ActionItem.Status.WONT_DO if change.wont_do else ActionItem.Status.DONE
        target = wanted if item.status != wanted else None
    elif item.status in finished:
        target = ActionItem.Status.OPEN
    if change.status and item.issue_status != change.status[:100]:
        item.issue_status = change.status[:100]
        item.save(update_fields=["issue_status"])
    if target is None:
        return item
    action_item_status_set(item=item, status=target, actor=actor)
    label = clients.LABELS[tracker]
    verb = "reopened" if target == ActionItem.Status.OPEN else f"closed ({change.status or 'done'})"
    timeline_record(
        incident=item.postmortem.incident,
        kind=TimelineKind.POSTMORTEM,
        body=f"Action item “{item.title}” {verb} in {label} ({change.key}): now {ActionItem.Status(target).label}.",
        actor=actor,
        data={"action": "issue_status", "action_item": item.pk, "tracker": tracker, "key": change.key, "to": target},
    )
    return item
