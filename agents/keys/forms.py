from django import forms

from agents.models import ApiKeyScope

AGENT_SCOPES = [(ApiKeyScope.INGEST.value, ApiKeyScope.INGEST.label), (ApiKeyScope.GATE.value, ApiKeyScope.GATE.label)]


class AgentKeyForm(forms.Form):
    agent = forms.SlugField(max_length=100)
    scopes = forms.MultipleChoiceField(
        choices=AGENT_SCOPES, widget=forms.CheckboxSelectMultiple, initial=[s for s, _ in AGENT_SCOPES]
    )
    redis = forms.BooleanField(required=False, label="Its own Redis user (read-only on its gate)")
    name = forms.CharField(max_length=200, required=False, label="Label")


class IntegrationKeyForm(forms.Form):
    integration = forms.RegexField(
        regex=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        max_length=100,
        label="Integration",
        error_messages={"invalid": "1-100 letters, digits, '.', '_' or '-' (e.g. prometheus-prod)."},
    )
    name = forms.CharField(max_length=200, required=False, label="Label")


class PersonKeyForm(forms.Form):
    username = forms.CharField(max_length=150, required=False)
    name = forms.CharField(max_length=200, required=False, label="Label")


class RevokeForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
