"""Helpers for the HTML views: a service's ValidationError shown on the form that caused it."""

from django import forms
from django.core.exceptions import ValidationError


def form_errors_add(form: forms.Form, exc: ValidationError) -> None:
    """Put each message of ``exc`` on the form: on its field when the form has it, else on the form."""
    if hasattr(exc, "error_dict"):
        for field, messages in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, messages)
    else:
        form.add_error(None, exc.messages)


def error_sentence(exc: ValidationError) -> str:
    """``exc`` as one line for a toast: "field: message; other message"."""
    if hasattr(exc, "error_dict"):
        return "; ".join(
            ", ".join(messages) if field == "__all__" else f"{field}: {', '.join(messages)}"
            for field, messages in exc.message_dict.items()
        )
    return "; ".join(exc.messages)
