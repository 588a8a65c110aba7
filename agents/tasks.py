from celery import shared_task

from agents.gate import gate_reconcile


@shared_task(ignore_result=True)
def gate_reconcile_task() -> int:
    """Beat: rewrite every gate key that Redis lost or holds wrong."""
    return gate_reconcile()
