"""SQL pieces the ORM does not spell the way PostgreSQL's indexes need them."""

from __future__ import annotations

from typing import Any

from django.db.models import BooleanField, Func, Value


def like_contains(text: str) -> str:
    """A LIKE pattern that matches ``text`` anywhere, its ``%``, ``_`` and ``\\`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class IContains(Func):
    """``expression ILIKE '%text%'``: case-insensitive containment that a ``gin_trgm_ops`` index on the same
    expression serves (Django's ``__icontains`` is ``UPPER(expression) LIKE UPPER(...)``, which it cannot)."""

    template = "%(expressions)s"
    arg_joiner = " ILIKE "
    output_field = BooleanField()

    def __init__(self, expression: Any, text: str) -> None:
        super().__init__(expression, Value(like_contains(text)))
