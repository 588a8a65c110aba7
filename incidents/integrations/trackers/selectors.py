"""Reads for tracker issues: why an action item's issue failed, for its row."""

from incidents.models import ActionItem, Delivery, PostMortem


def issue_errors(*, postmortem: PostMortem) -> dict[int, str]:
    """Action item id → why its last issue request failed (its newest failed tracker Delivery)."""
    failed_items = set(
        postmortem.action_items.filter(issue_state=ActionItem.IssueState.FAILED).values_list("pk", flat=True)
    )
    if not failed_items:
        return {}
    errors: dict[int, str] = {}
    deliveries = Delivery.objects.filter(
        incident_id=postmortem.incident_id, channel=Delivery.Channel.TRACKER, status=Delivery.Status.FAILED
    ).order_by("-created_at", "-id")
    for delivery in deliveries.only("detail", "error"):
        item_id = delivery.detail.get("action_item") if isinstance(delivery.detail, dict) else None
        if item_id in failed_items and item_id not in errors:
            errors[item_id] = delivery.error
    return errors
