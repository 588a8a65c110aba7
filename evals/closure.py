"""The closure check evals adds to incidents (incidents.hooks.closure_checks): no incident closes
until at least one eval case was captured from it and every one of its cases' latest run passed."""

from evals.models import EvalCase, EvalRun
from incidents.models import Incident

SHOWN = 5


def _refs(cases: list[EvalCase]) -> str:
    return ", ".join(f"EC-{case.pk}" for case in cases[:SHOWN]) + (" …" if len(cases) > SHOWN else "")


def eval_case_green(incident: Incident) -> str | None:
    """None when ``incident`` has eval cases and each one's latest run passed; otherwise what is missing."""
    cases = list(EvalCase.objects.filter(incident=incident).order_by("id"))
    if not cases:
        return "Needs an eval case whose latest run passed — no eval case yet"
    latest = {
        run.case_id: run.passed
        for run in EvalRun.objects.filter(case__in=cases).order_by("case_id", "-ran_at", "-id").distinct("case_id")
    }
    not_green = [case for case in cases if latest.get(case.pk) is not True]
    if not not_green:
        return None
    refs = _refs(not_green)
    which = f"eval case {refs} has" if len(not_green) == 1 else f"eval cases {refs} have"
    if len(not_green) == len(cases):
        return f"Needs an eval case whose latest run passed — {which} no passing run yet"
    return f"Needs each of its eval cases' latest run to pass — {which} no passing run yet"
