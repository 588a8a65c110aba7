"""Shared SQL helpers: an agent's steps in [baseline start, now), split at the window start."""

from datetime import datetime, timedelta
from typing import Any

from django.db import connection

from incidents.detection.base import Thresholds
from traces.models import Step, Trace

STEP = Step._meta.db_table
TRACE = Trace._meta.db_table

# Steps of one agent in [bstart, now): the BRIN index on started_at narrows the scan, the trace join
# filters the agent. ``win`` is true for steps in the window [wstart, now).
FROM_STEPS = f"""
    FROM {STEP} s JOIN {TRACE} t ON t.id = s.trace_id
    WHERE t.agent_id = %(agent)s AND s.started_at >= %(bstart)s AND s.started_at < %(now)s
      AND t.started_at >= %(tstart)s AND t.started_at < %(now)s
"""


def bounds(*, agent_id: int, now: datetime, settings: Thresholds) -> dict[str, Any]:
    """Query parameters: window = the last ``window_minutes``; baseline = ``baseline_days`` before it."""
    wstart = now - timedelta(minutes=settings["window_minutes"])
    bstart = wstart - timedelta(days=settings["baseline_days"])
    # A trace starts before its steps; allow a day of run time so the trace index can prune too.
    return {"agent": agent_id, "now": now, "wstart": wstart, "bstart": bstart, "tstart": bstart - timedelta(days=1)}


def fetchall(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows
