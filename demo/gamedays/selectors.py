"""Gameday reads: the list, one gameday, its scorecard against the five-minute runbook, earlier drills."""

from typing import Any

from django.db.models import QuerySet

from agents.signing import public_key_text
from demo.gamedays.models import MARKS, Gameday, GamedayStatus

RUNBOOK_SECONDS = 60  # each runbook step has its minute: step n is due by n minutes from the start
COMPARE_LIMIT = 20


def gameday_list(*, limit: int = 100) -> QuerySet[Gameday]:
    return Gameday.objects.select_related("agent").order_by("-started_at", "-id")[:limit]


def gameday_get(*, pk: int) -> Gameday:
    """Raises Gameday.DoesNotExist."""
    return Gameday.objects.select_related("agent").get(pk=pk)


def gameday_scorecard(*, gameday: Gameday) -> list[dict[str, Any]]:
    """One row per mark: its time from the start, the runbook's target (minute n), and on time or late."""
    timings = gameday.timings()
    rows = []
    for name, minute, label in MARKS:
        seconds = timings[name]
        target = minute * RUNBOOK_SECONDS if minute else None
        if seconds is None:
            verdict = "pending"
        elif target is None:
            verdict = "done"
        else:
            verdict = "on time" if seconds <= target else "late"
        rows.append(
            {"name": name, "label": label, "minute": minute, "seconds": seconds, "target": target, "verdict": verdict}
        )
    return rows


def gameday_comparison(*, gameday: Gameday) -> dict[str, Any]:
    """This drill and the earlier ones of its scenario (oldest first), each mark in seconds, for the chart."""
    earlier = list(
        Gameday.objects.filter(scenario=gameday.scenario, started_at__lte=gameday.started_at)
        .exclude(status=GamedayStatus.CANCELLED)
        .order_by("-started_at", "-id")[:COMPARE_LIMIT]
    )
    earlier.reverse()
    return {
        "marks": [name for name, _, _ in MARKS],
        "labels": [label for _, _, label in MARKS],
        "targets": [minute * RUNBOOK_SECONDS if minute else None for _, minute, _ in MARKS],
        "drills": [{"ref": g.ref, "current": g.pk == gameday.pk, "timings": g.timings()} for g in earlier],
    }


def gate_public_key() -> str:
    """The gate documents' public key (base64), which the drill's agent process verifies them with."""
    return public_key_text()
