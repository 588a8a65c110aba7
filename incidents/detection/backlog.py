"""Batches whose detection could not be queued: kept in PostgreSQL, queued again once the broker answers.

A batch commits, then its traces are handed to the streaming detectors through the broker (Redis). If
the broker is down at that moment, the hand-off is recorded here instead of lost; a beat task drains
the records oldest first when the broker is back. Together with late acks (a worker killed mid-batch
leaves its message to be delivered again), every committed batch is detected at least once; the
detectors are idempotent where it matters (alerts deduplicate by fingerprint).
"""

import logging
from collections.abc import Callable, Collection

from django.db import transaction

from incidents.models import DetectionBacklog

logger = logging.getLogger(__name__)

DRAIN_BATCH = 200


def detection_backlog_record(*, trace_pks: Collection[int]) -> DetectionBacklog:
    """Remember a batch whose detection could not be queued."""
    return DetectionBacklog.objects.create(trace_pks=list(trace_pks))


def detection_backlog_drain(*, enqueue: Callable[[list[int]], object]) -> int:
    """Queue the remembered batches, oldest first; each record goes only once it was queued.

    ``enqueue`` is the task's ``delay``; when it raises (the broker is down again) the record stays and
    draining stops. Rows are taken with SKIP LOCKED, so two drainers never queue one batch twice.
    Returns how many batches were queued.
    """
    queued = 0
    while True:
        with transaction.atomic():
            rows = list(DetectionBacklog.objects.select_for_update(skip_locked=True).order_by("id")[:DRAIN_BATCH])
            if not rows:
                return queued
            for row in rows:
                try:
                    enqueue(list(row.trace_pks))
                except Exception:
                    logger.warning(
                        "detection backlog: the broker still refuses; %d batch(es) wait", len(rows), exc_info=True
                    )
                    DetectionBacklog.objects.filter(pk__in=[r.pk for r in rows[: rows.index(row)]]).delete()
                    return queued
                queued += 1
            DetectionBacklog.objects.filter(pk__in=[r.pk for r in rows]).delete()
