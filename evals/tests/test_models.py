from datetime import timedelta

from django.utils import timezone

from evals.models import EvalCase, EvalRun


def test_latest_run_comes_first(make_agent):
    case = EvalCase.objects.create(
        agent=make_agent(), title="no refund loop", input="refund me", expected_behaviour="one refund call at most"
    )
    now = timezone.now()
    EvalRun.objects.create(case=case, passed=False, ran_at=now - timedelta(hours=1))
    EvalRun.objects.create(case=case, passed=True, ran_at=now)
    assert case.runs.first().passed is True
    assert str(case).startswith(f"EC-{case.pk} ")
