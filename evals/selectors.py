"""Reads for evals: cases with their latest run result."""

from typing import TypedDict

from django.db.models import Case, Count, IntegerField, OuterRef, QuerySet, Subquery, Value, When

from agents.models import Agent
from evals.models import EvalCase, EvalRun, ForbiddenAction
from incidents.models import Incident
from traces.models import Step, Trace


class RunChart(TypedDict):
    x: list[str]  # ISO times, oldest first
    y: list[int]  # 1 passed, 0 failed
    version: list[str]
    passed: int
    failed: int


class EvalCaseDocument(TypedDict):
    """A case as ``GET /api/v1/evals/cases`` exports it: the keys are a stable contract."""

    id: str
    case_id: int
    agent: str
    title: str
    input: str
    expected_behaviour: str
    forbidden_actions: list[ForbiddenAction]
    failure_class: str | None
    severity: str | None
    incident: int | None
    trace_id: str | None
    created_at: str


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
        # A query annotation of eval_case_list, not a model attribute: the stubs cannot see it.
        passed: bool | None = getattr(case, "latest_passed")  # noqa: B009
        key = "not_run" if passed is None else "passing" if passed else "failing"
        summary[key] += 1
    return summary


def eval_case_get(*, pk: int) -> EvalCase:
    """One case with its agent, incident, trace and failure class; raises EvalCase.DoesNotExist."""
    return EvalCase.objects.select_related("agent", "incident", "trace", "failure_class", "created_by").get(pk=pk)


def eval_run_list(*, case: EvalCase, limit: int = 200) -> list[EvalRun]:
    """The case's latest ``limit`` runs, newest first."""
    return list(EvalRun.objects.filter(case=case).order_by("-ran_at", "-id")[:limit])


def eval_run_chart(*, runs: list[EvalRun]) -> RunChart:
    """Pass/fail over time for plotly, oldest first: {"x": iso times, "y": 1/0, "version": [...], "passed": n}."""
    ordered = list(reversed(runs))
    return {
        "x": [run.ran_at.isoformat() for run in ordered],
        "y": [1 if run.passed else 0 for run in ordered],
        "version": [run.version for run in ordered],
        "passed": sum(1 for run in ordered if run.passed),
        "failed": sum(1 for run in ordered if not run.passed),
    }


def eval_case_flagged_step(*, case: EvalCase) -> Step | None:
    """The step the case was captured at (the trace's flagged step then), if the trace still has it."""
    if not case.trace_id or not case.flagged_span_id:
        return None
    return Step.objects.filter(trace_id=case.trace_id, span_id=case.flagged_span_id).first()


def eval_case_export(*, agent: Agent | None = None, incident: Incident | None = None) -> list[EvalCaseDocument]:
    """Every case (oldest first, so the order is stable between reads) in the export format of
    ``GET /api/v1/evals/cases``."""
    qs = EvalCase.objects.select_related("agent", "incident", "trace", "failure_class").order_by("id")
    if agent is not None:
        qs = qs.filter(agent=agent)
    if incident is not None:
        qs = qs.filter(incident=incident)
    return [eval_case_document(case) for case in qs]


def eval_case_document(case: EvalCase) -> EvalCaseDocument:
    """One case as an agent team's own runner reads it (the keys are a stable contract)."""
    return {
        "id": f"EC-{case.pk}",
        "case_id": case.pk,
        "agent": case.agent.slug,
        "title": case.title,
        "input": case.input,
        "expected_behaviour": case.expected_behaviour,
        "forbidden_actions": case.forbidden_actions or [],
        "failure_class": fc.slug if (fc := case.failure_class) else None,
        "severity": case.severity or None,
        "incident": incident.number if (incident := case.incident) else None,
        "trace_id": trace.trace_id if (trace := case.trace) else None,
        "created_at": case.created_at.isoformat(),
    }


def golden_trajectory_list(*, limit: int = 500) -> list[Trace]:
    """The golden trajectory of each (agent, input class), by agent then class."""
    return list(
        Trace.objects.select_related("agent")
        .filter(is_golden=True)
        .order_by("agent__slug", "input_class", "-id")[:limit]
    )


def retention_kept_traces() -> QuerySet:
    """The traces retention keeps for evals (``traces.hooks.retention_keepers``): each eval case's trace."""
    return EvalCase.objects.filter(trace__isnull=False).values("trace_id")
