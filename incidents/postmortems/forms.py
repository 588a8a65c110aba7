from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from incidents.models import ActionItem
from incidents.postmortems.services import ACTION_TITLE_MAX, SECTION_BODY_MAX


class SectionForm(forms.Form):
    body = forms.CharField(required=False, strip=False, max_length=SECTION_BODY_MAX)


class ActionItemForm(forms.Form):
    title = forms.CharField(max_length=ACTION_TITLE_MAX)
    kind = forms.ChoiceField(choices=ActionItem.Kind.choices)
    # The queryset is set per form in __init__ (active users, read when the form is built).
    owner: "forms.ModelChoiceField[User]" = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="— unassigned —"
    )
    due_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = get_user_model().objects.filter(is_active=True).order_by("username")
