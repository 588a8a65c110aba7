"""Keyset pages: lists that can grow long are read a page at a time from the last row's key, never by
OFFSET, so a page costs the same at the end of a list as at its start and rows added meanwhile do not
shift it."""

from typing import Any, TypeVar

from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def keyset_page(
    qs: QuerySet[M], *, key: str, descending: bool, cursor: int | None, limit: int
) -> tuple[list[M], int | None]:
    """``limit`` rows of ``qs`` ordered by the unique integer field ``key``, after ``cursor`` (a key value
    from the page before; None: the first page), and the cursor of the next page (None: this is the last)."""
    if cursor is not None:
        qs = qs.filter(**{f"{key}__lt" if descending else f"{key}__gt": cursor})
    rows = list(qs.order_by(f"-{key}" if descending else key)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    last: Any = getattr(rows[-1], key) if more and rows else None
    return rows, last
