import json

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from core.actors import Actor
from core.forms import form_errors_add
from core.roles import RESPONDER, role_required
from evals import selectors, services
from evals.canaries import canary_list
from evals.models import EvalCase
from incidents.models import FailureClass, Incident, IncidentStatus, Severity
from traces.models import Trace
from traces.selectors.payloads import trace_root_input
from traces.selectors.runs import trace_get


@require_GET
def case_list(request):
    cases = selectors.eval_case_list()
    return render(
        request,
        "evals/case_list.html",
        {
            "cases": cases,
            "summary": selectors.eval_summary(cases=cases),
            "goldens": selectors.golden_trajectory_list(),
            "canaries": canary_list(),
        },
    )


@require_GET
def case_detail(request, pk: int):
    try:
        case = selectors.eval_case_get(pk=pk)
    except EvalCase.DoesNotExist:
        raise Http404("No eval case with this id.") from None
    runs = selectors.eval_run_list(case=case)
    return render(
        request,
        "evals/case_detail.html",
        {
            "case": case,
            "runs": runs,
            "latest": runs[0] if runs else None,
            "chart": selectors.eval_run_chart(runs=runs),
            "step": selectors.eval_case_flagged_step(case=case),
            "forbidden_json": json.dumps(case.forbidden_actions or [], indent=2, ensure_ascii=False),
        },
    )


class CaptureForm(forms.Form):
    # The rules (required, lengths, the forbidden-action shape) live in services.eval_case_capture.
    trace = forms.CharField(max_length=64, widget=forms.HiddenInput)
    agent = forms.CharField(required=False, max_length=63, widget=forms.HiddenInput)
    incident = forms.IntegerField(required=False, min_value=1, label="Source incident")
    title = forms.CharField(required=False, max_length=services.TITLE_MAX)
    input = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}))
    expected_behaviour = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))
    forbidden_actions = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6, "class": "mono"}))
    failure_class = forms.ChoiceField(required=False)
    severity = forms.ChoiceField(required=False, choices=[("", "—"), *Severity.choices])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["failure_class"].choices = [("", "—"), *FailureClass.objects.values_list("slug", "name")]

    def clean_incident(self):
        number = self.cleaned_data.get("incident")
        if number is None:
            return None
        incident = Incident.objects.select_related("failure_class").filter(number=number).first()
        if incident is None:
            raise ValidationError(f"No incident INC-{number}.")
        return incident


def _capture_initial(trace: Trace, incident: Incident | None) -> dict:
    return {
        "trace": trace.trace_id,
        "agent": trace.agent.slug,
        "incident": incident.number if incident else None,
        "title": services.eval_case_default_title(trace=trace, incident=incident),
        "input": trace_root_input(trace=trace),  # whole, where the trace row holds a preview
        "forbidden_actions": json.dumps(services.forbidden_actions_suggest(trace=trace), indent=2, ensure_ascii=False),
        "failure_class": incident.failure_class.slug if incident and incident.failure_class else "",
        "severity": incident.severity if incident else "",
    }


def _trace_or_404(params) -> Trace:
    """The trajectory ``trace`` and ``agent`` name (a trace id may hold several agents' trajectories;
    without ``agent``, the default one the viewer opens)."""
    try:
        return trace_get(trace_id=params.get("trace", "").strip()[:64], agent=params.get("agent", "").strip()[:63])
    except Trace.DoesNotExist:
        raise Http404("No trace with this id: open the capture form from a trace or an incident.") from None


def _incident_for(trace: Trace, number: str) -> Incident | None:
    """The incident named in the query, else the latest open incident the trace is attached to."""
    qs = Incident.objects.select_related("failure_class")
    if number:
        try:
            return qs.get(number=int(number))
        except (ValueError, Incident.DoesNotExist):
            raise Http404("No incident with this number.") from None
    open_statuses = [IncidentStatus.DECLARED, IncidentStatus.INVESTIGATING, IncidentStatus.CONTAINED]
    return qs.filter(traces=trace, status__in=open_statuses).order_by("-number").first()


@require_http_methods(["GET", "POST"])
@role_required(RESPONDER)
def case_capture(request):
    """Capture a trace as an eval case. GET ?trace=<id>&agent=<slug>&incident=<number> shows the form, prefilled."""
    if request.method == "GET":
        trace = _trace_or_404(request.GET)
        incident = _incident_for(trace, request.GET.get("incident", "").strip())
        form = CaptureForm(initial=_capture_initial(trace, incident))
        return render(request, "evals/case_capture.html", _capture_context(trace, incident, form))
    form = CaptureForm(request.POST)
    trace = _trace_or_404(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            case = services.eval_case_capture(
                trace=trace,
                incident=data["incident"],
                title=data["title"],
                input_text=data["input"],
                expected_behaviour=data["expected_behaviour"],
                forbidden_actions=data["forbidden_actions"],
                failure_class=data["failure_class"],
                severity=data["severity"],
                actor=Actor.from_request(request),
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, f"Eval case EC-{case.pk} captured.")
            return redirect("evals:case-detail", pk=case.pk)
    incident = form.cleaned_data.get("incident") if hasattr(form, "cleaned_data") else None
    return render(request, "evals/case_capture.html", _capture_context(trace, incident, form), status=400)


def _capture_context(trace: Trace, incident: Incident | None, form: CaptureForm) -> dict:
    return {
        "trace": trace,
        "incident": incident,
        "form": form,
        "step": trace.steps.filter(span_id=trace.flagged_span_id).first() if trace.flagged_span_id else None,
    }
