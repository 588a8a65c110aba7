from django.shortcuts import render

from evals import selectors


def case_list(request):
    cases = selectors.eval_case_list()
    return render(
        request,
        "evals/case_list.html",
        {"cases": cases, "summary": selectors.eval_summary(cases=cases)},
    )
