import contextlib

from django import forms
from django.contrib.auth import get_user_model

from agents.models import Agent
from incidents.models import Alert, FailureClass, Severity
from incidents.services import NOTE_MAX, SUMMARY_MAX, TITLE_MAX
from traces.models import Trace
from traces.selectors.runs import trace_get, trace_get_by_ref, trace_ref


class IncidentDeclareForm(forms.Form):
    title = forms.CharField(max_length=TITLE_MAX)
    severity = forms.ChoiceField(choices=Severity.choices, widget=forms.RadioSelect)
    failure_class = forms.ModelChoiceField(
        FailureClass.objects.all(),
        to_field_name="slug",
        widget=forms.RadioSelect,
        empty_label=None,
        required=False,
        help_text="Optional: not yet classified until triage",
    )
    agents = forms.ModelMultipleChoiceField(
        Agent.objects.order_by("slug"), to_field_name="slug", required=False, widget=forms.CheckboxSelectMultiple
    )
    traces = forms.CharField(
        required=False,
        max_length=5000,
        help_text="Trace ids, separated by commas or spaces; <trace id>@<agent> picks one agent's trajectory",
        strip=True,
    )
    commander = forms.ModelChoiceField(
        get_user_model().objects.filter(is_active=True).order_by("username"),
        to_field_name="username",
        required=False,
        help_text="Defaults to you",
    )
    summary = forms.CharField(required=False, max_length=SUMMARY_MAX, widget=forms.Textarea(attrs={"rows": 5}))
    alert = forms.ModelChoiceField(Alert.objects.all(), required=False, widget=forms.HiddenInput)

    def clean_traces(self) -> list[Trace]:
        # ``<trace_id>`` or ``<trace_id>@<agent>``: a trace id may hold several agents' trajectories.
        ids = list(dict.fromkeys(self.cleaned_data["traces"].replace(",", " ").split()))
        found: dict[str, Trace] = {}
        for ref in ids:
            with contextlib.suppress(Trace.DoesNotExist):
                found[ref] = trace_get_by_ref(ref=ref)
        missing = [i for i in ids if i not in found]
        if missing:
            raise forms.ValidationError(f"No trace with id {', '.join(m[:100] for m in missing[:5])}.")
        return list({t.pk: t for t in (found[i] for i in ids)}.values())


def declare_initial(params, user) -> dict:
    """Initial values from ``?trace=<id>&agent=<slug>``, ``?agent=<slug>`` or ``?alert=<id>``."""
    initial = {"commander": user.get_username() if user.is_authenticated else None}
    agents, traces = [], []
    alert_id = params.get("alert", "")
    if alert_id.isdigit():
        alert = Alert.objects.select_related("agent", "trace", "failure_class").filter(pk=alert_id).first()
        if alert is not None:
            initial.update(alert=alert.pk, title=alert.title, severity=alert.suggested_severity)
            if alert.failure_class:
                initial["failure_class"] = alert.failure_class.slug
            if alert.agent is not None:  # an alert from outside may name no agent
                agents.append(alert.agent.slug)
            if alert.trace:
                traces.append(trace_ref(alert.trace))
    trace_id = params.get("trace", "").strip()
    if trace_id:
        try:
            trace = trace_get(trace_id=trace_id[:32], agent=params.get("agent", "").strip()[:63])
        except Trace.DoesNotExist:
            pass
        else:
            traces.append(trace_ref(trace))
            agents.append(trace.agent.slug)
            if "title" not in initial:
                initial.update(_from_trace(trace))
    slug = params.get("agent", "").strip()
    if slug and Agent.objects.filter(slug=slug[:63]).exists():
        agents.append(slug)
    if agents:
        initial["agents"] = list(dict.fromkeys(agents))
    if traces:
        initial["traces"] = " ".join(dict.fromkeys(traces))
    return initial


def _from_trace(trace: Trace) -> dict:
    """A title, a suggested severity (and class) for declaring from the trajectory viewer.

    An open alert on the trace wins: its title, severity and class, and the alert is linked
    (the declaration acknowledges it).
    """
    alert = (
        Alert.objects.select_related("failure_class")
        .filter(trace=trace, status=Alert.Status.OPEN)
        .order_by("-last_seen")
        .first()
    )
    if alert is not None:
        initial = {"alert": alert.pk, "title": alert.title, "severity": alert.suggested_severity}
        if alert.failure_class:
            initial["failure_class"] = alert.failure_class.slug
        return initial
    if trace.flagged_span_id:
        what = f"flagged step: {trace.flag_note}" if trace.flag_note else f"flagged step {trace.flagged_span_id}"
    else:
        what = f"trajectory {trace.get_status_display().lower()}"
    # An error or a kill is worse than a flag alone; neither is SEV1 until someone says so.
    severity = Severity.SEV2 if trace.status in ("error", "killed") or trace.flagged_span_id else Severity.SEV3
    return {"title": f"{trace.agent.slug}: {what}"[:TITLE_MAX], "severity": severity}


class NoteForm(forms.Form):
    body = forms.CharField(max_length=NOTE_MAX, widget=forms.Textarea(attrs={"rows": 3}))
