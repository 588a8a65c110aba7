"""Celery adapters for detection: take ids, call the runner, the schedule or the health score.

The tasks keep the names they were registered under when they lived in ``incidents.tasks``:
the beat schedule (``firebreak.settings.CELERY_BEAT_SCHEDULE``) and messages already queued
name them so.
"""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from incidents.detection.backlog import detection_backlog_drain
from incidents.detection.health import health_scores_compute
from incidents.detection.runner import detect_batch_stashed
from incidents.detection.schedule import detect_scheduled


@shared_task(name="incidents.tasks.detect_scheduled_task", ignore_result=True, expires=300)
def detect_scheduled_task() -> int:
    """Run the scheduled detectors over every active agent; returns how many alerts were raised or bumped."""
    return len(detect_scheduled())


@shared_task(name="incidents.tasks.health_scores_task", ignore_result=True, expires=60)
def health_scores_task() -> int:
    """Recompute and store every agent's health score; returns how many agents were scored."""
    return len(health_scores_compute())


@shared_task(
    name="incidents.tasks.detect_batch_task",
    ignore_result=True,
    # PostgreSQL restarting is not a reason to skip a batch: try again, with backoff.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=60,
    max_retries=30,
)
def detect_batch_task(trace_pks: list[int], steps_key: str | None = None) -> int:
    """Run the streaming detectors on one ingested batch (``steps_key``: where ingest left the steps of the
    traces it created; a message without one, or whose steps are gone, reads them all); returns the number of
    alerts raised or bumped."""
    return len(detect_batch_stashed(trace_pks=trace_pks, steps_key=steps_key))


@shared_task(name="incidents.tasks.detection_backlog_drain_task", ignore_result=True, expires=20)
def detection_backlog_drain_task() -> int:
    """Beat: queue the batches whose detection could not be queued when they committed."""
    return detection_backlog_drain(enqueue=detect_batch_task.delay)
