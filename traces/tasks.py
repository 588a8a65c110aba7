"""Celery adapters for traces: beat's hourly partition upkeep and retention."""

import logging

from celery import shared_task

from traces.retention.partitions import partitions_ensure
from traces.retention.services import retention_run

logger = logging.getLogger(__name__)


@shared_task
def retention_task() -> dict[str, int]:
    made = partitions_ensure()
    report = retention_run()
    if made or report.dropped or report.traces:
        logger.info(
            "retention: made %s; dropped %s; deleted %d steps, %d traces",
            made, [d.name for d in report.dropped], report.steps, report.traces,
        )  # fmt: skip
    return {"made": len(made), "dropped": len(report.dropped), "steps": report.steps, "traces": report.traces}
