"""Errors that services raise and every interface (HTML, API, CLI) maps the same way."""

from django.core.exceptions import ValidationError


class Conflict(ValidationError):
    """The action does not apply to the object as it is now (an API answers 409); nothing was written."""


def error_messages(exc: ValidationError) -> list[str]:
    """Every message of ``exc`` as plain sentences, field messages included, in order."""
    if hasattr(exc, "error_dict"):
        return [m for messages in exc.message_dict.values() for m in messages]
    return list(exc.messages)


def error_detail(exc: ValidationError) -> dict[str, list[str]] | list[str]:
    """``exc`` as JSON: ``{field: [messages]}`` when it names fields, else ``[messages]``."""
    return exc.message_dict if hasattr(exc, "error_dict") else list(exc.messages)
