from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from incidents.models import ActionItem
from incidents.postmortems.services import ACTION_TITLE_MAX


class PostMortemForm(forms.Form):
    """All the sections of one post-mortem: ``body_<key>`` (Markdown) and ``base_<key>``, the hash of the body
    the editor was loaded with (see ``postmortem_sections_save``). The length is checked by the service."""

    def __init__(self, *args, sections: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.keys = [str(s.get("key")) for s in sections]
        for key in self.keys:
            self.fields[f"body_{key}"] = forms.CharField(required=False, strip=False)
            self.fields[f"base_{key}"] = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def _posted(self) -> list[str]:
        # A field left out of the post keeps its section (a missing field is not an empty one).
        return [key for key in self.keys if f"body_{key}" in self.data]

    def bodies(self) -> dict[str, str]:
        return {key: self.cleaned_data[f"body_{key}"] for key in self._posted()}

    def loaded(self) -> dict[str, str]:
        return {key: self.cleaned_data[f"base_{key}"] for key in self._posted() if self.cleaned_data[f"base_{key}"]}

    def add_service_error(self, error: ValidationError) -> None:
        """Put the service's errors (keyed by section) next to their section's field."""
        if hasattr(error, "error_dict"):
            for key, messages in error.message_dict.items():
                field = f"body_{key}"
                self.add_error(field if field in self.fields else None, messages)
        else:
            self.add_error(None, error.messages)

    def section_errors(self) -> dict[str, list[str]]:
        return {key: [str(e) for e in self.errors[f"body_{key}"]] for key in self.keys if f"body_{key}" in self.errors}


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
