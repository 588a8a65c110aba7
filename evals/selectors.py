"""Reads for evals: cases with their latest run result."""

from django.db.models import Case, Count, IntegerField, OuterRef, Subquery, Value, When

from agents.models import Agent
from evals.models import EvalCase, EvalRun


def eval_case_list(*, agent: Agent | None = None, limit: int = 500) -> list[EvalCase]:
    """Cases failing first, then never run, then passing; newest first within each.

    Each case carries ``latest_passed`` (None if never run), ``latest_ran_at``,
    ``latest_version`` and ``run_count``.
    """
    latest = EvalRun.objects.filter(case=OuterRef("pk")).order_by("-ran_at", "-id")
    qs = (
        EvalCase.objects.select_related("agent", "incident", "trace", "failure_class")
        .annotate(
            latest_passed=Subquery(latest.values("passed")[:1]),
            latest_ran_at=Subquery(latest.values("ran_at")[:1]),
            latest_version=Subquery(latest.values("version")[:1]),
            run_count=Count("runs"),
            result_rank=Case(
                When(latest_passed=False, then=Value(0)),
                When(latest_passed__isnull=True, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            ),
        )
        .order_by("result_rank", "-created_at", "-id")
    )
    if agent is not None:
        qs = qs.filter(agent=agent)
    return list(qs[:limit])


def eval_summary(*, cases: list[EvalCase]) -> dict[str, int]:
    """Counts of failing, never-run and passing cases in ``cases``."""
    summary = {"failing": 0, "not_run": 0, "passing": 0}
    for case in cases:
        key = "not_run" if case.latest_passed is None else "passing" if case.latest_passed else "failing"
        summary[key] += 1
    return summary
