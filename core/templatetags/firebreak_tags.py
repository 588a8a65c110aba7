"""Display helpers for the pages: money, durations, relative times, badges, JSON.

Every filter returns plain text (autoescaped by the template) or builds its
HTML with ``format_html``, so untrusted trace content stays escaped.
"""

import json
import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from core.markdown import render_markdown

register = template.Library()

DASH = "—"


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


@register.filter
def money(value: object) -> str:
    """USD with cents, or four significant decimals below one cent: $12.40, $0.0042."""
    amount = _decimal(value)
    if amount is None:
        return DASH
    if amount == 0:
        return "$0.00"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount < Decimal("0.01"):
        return f"{sign}${amount:.4f}"
    return f"{sign}${amount:,.2f}"


@register.filter
def num(value: Any) -> str:
    """An integer with thousands separators: 1,234,567."""
    if value is None or value == "":
        return DASH
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def duration(ms: Any) -> str:
    """Milliseconds as a short human duration: 340 ms, 2.4 s, 3 min 12 s, 2 h 5 min."""
    if ms is None or ms == "":
        return DASH
    if isinstance(ms, timedelta):
        ms = ms.total_seconds() * 1000
    try:
        ms = float(ms)
    except (TypeError, ValueError):
        return DASH
    if ms < 0:
        return DASH
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@register.filter
def ago(value: datetime | None, now: datetime | None = None) -> str:
    """Relative time: "just now", "4 min ago", "3 h ago", "2 d ago", or "in 5 min" for the future."""
    if not value:
        return DASH
    now = now or timezone.now()
    delta = (now - value).total_seconds()
    future = delta < 0
    seconds = abs(delta)
    if seconds < 45:
        return "just now" if not future else "in a moment"
    if seconds < 3600:
        text = f"{max(1, round(seconds / 60))} min"
    elif seconds < 48 * 3600:
        text = f"{int(seconds // 3600)} h"
    else:
        text = f"{int(seconds // 86400)} d"
    return f"in {text}" if future else f"{text} ago"


@register.simple_tag
def timestamp(value: datetime | None) -> str:
    """A <time> element: relative text, the exact UTC time on hover and for machines."""
    if not value:
        return DASH
    exact = timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact, ago(value))


_CSS_SAFE = re.compile(r"[^a-z0-9-]+")


def _css(value: object) -> str:
    return _CSS_SAFE.sub("-", str(value).lower()).strip("-") or "unknown"


@register.simple_tag
def badge(value: object, label: object = None, kind: str = "") -> SafeString:
    """A coloured badge for a state value: gate states, severities, statuses, pass/fail.

    The CSS class is derived from ``kind`` and ``value`` (reduced to [a-z0-9-]);
    the text is ``label`` or the value, escaped.
    """
    if value is None or value == "":
        return format_html('<span class="badge badge-none">{}</span>', label or DASH)
    css = f"badge-{_css(kind)}-{_css(value)}" if kind else f"badge-{_css(value)}"
    return format_html('<span class="badge {}">{}</span>', css, label if label is not None else value)


@register.filter
def pretty_json(value: object) -> str:
    """JSON indented for a <pre>; returned as plain text so the template escapes it."""
    if value is None:
        return ""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


@register.filter
def clip(value: object, limit: int | str = 2000) -> str:
    """At most ``limit`` characters, with a note of how much was cut."""
    text = "" if value is None else str(value)
    limit = int(limit)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… [{len(text) - limit:,} more characters not shown]"


@register.filter
def get_item(mapping: Any, key: object) -> Any:
    """``mapping[key]`` for dicts in templates; None when missing."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter(name="markdown")
def markdown_filter(text: str | None) -> SafeString:
    """Render untrusted Markdown to sanitized HTML (nh3)."""
    return render_markdown(text)
