from django import forms
from django.contrib.auth import get_user_model

from agents.models import Agent
from incidents.models import Alert, FailureClass, Severity
from incidents.services import NOTE_MAX, SUMMARY_MAX, TITLE_MAX
from traces.models import Trace


class IncidentDeclareForm(forms.Form):
    title = forms.CharField(max_length=TITLE_MAX)
    severity = forms.ChoiceField(choices=Severity.choices, widget=forms.RadioSelect)
    failure_class = forms.ModelChoiceField(
        FailureClass.objects.all(), to_field_name="slug", widget=forms.RadioSelect, empty_label=None
    )
    agents = forms.ModelMultipleChoiceField(
        Agent.objects.order_by("slug"), to_field_name="slug", required=False, widget=forms.CheckboxSelectMultiple
    )
    traces = forms.CharField(
        required=False, max_length=5000, help_text="Trace ids, separated by commas or spaces", strip=True
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
        ids = list(dict.fromkeys(self.cleaned_data["traces"].replace(",", " ").split()))
        found = {t.trace_id: t for t in Trace.objects.filter(trace_id__in=ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise forms.ValidationError(f"No trace with id {', '.join(m[:32] for m in missing[:5])}.")
        return [found[i] for i in ids]


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
            agents.append(alert.agent.slug)
            if alert.trace:
                traces.append(alert.trace.trace_id)
    trace_id = params.get("trace", "").strip()
    if trace_id:
        trace = Trace.objects.select_related("agent").filter(trace_id=trace_id[:32]).first()
        if trace is not None:
            traces.append(trace.trace_id)
            agents.append(trace.agent.slug)
    slug = params.get("agent", "").strip()
    if slug and Agent.objects.filter(slug=slug[:63]).exists():
        agents.append(slug)
    if agents:
        initial["agents"] = list(dict.fromkeys(agents))
    if traces:
        initial["traces"] = " ".join(dict.fromkeys(traces))
    return initial


class NoteForm(forms.Form):
    body = forms.CharField(max_length=NOTE_MAX, widget=forms.Textarea(attrs={"rows": 3}))
