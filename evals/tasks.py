from celery import shared_task

from evals.canaries import canaries_run_due, canary_run
from evals.models import CanaryPrompt


@shared_task(ignore_result=True)
def canaries_run_due_task() -> list[int]:
    """Beat (every minute): queue a run of every due canary."""
    return canaries_run_due(enqueue=canary_run_task.delay)


@shared_task(ignore_result=True)
def canary_run_task(canary_id: int) -> str | None:
    """Run one canary; a canary deleted or disabled since it was queued is skipped."""
    canary = CanaryPrompt.objects.select_related("agent").filter(pk=canary_id, enabled=True).first()
    if canary is None:
        return None
    return canary_run(canary=canary).outcome
