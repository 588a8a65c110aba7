"""The closure check evals adds to incidents (incidents.hooks.closure_checks): no incident closes
without an eval case captured from it whose latest run passed."""

from evals.models import EvalCase, EvalRun


def eval_case_green(incident) -> str | None:
    """None when at least one case captured from ``incident`` passed its latest run; otherwise what is missing."""
    cases = list(EvalCase.objects.filter(incident=incident).order_by("id"))
    if not cases:
        return "Needs an eval case whose latest run passed — no eval case yet"
    for case in cases:
        latest = EvalRun.objects.filter(case=case).order_by("-ran_at", "-id").first()
        if latest is not None and latest.passed:
            return None
    details = ", ".join(f"EC-{case.pk}" for case in cases[:5]) + (" …" if len(cases) > 5 else "")
    which = f"eval case {details} has" if len(cases) == 1 else f"eval cases {details} have"
    return f"Needs an eval case whose latest run passed — {which} no passing run yet"
