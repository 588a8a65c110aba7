from datetime import timedelta

from django import forms
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from agents.selectors import agent_list
from traces import selectors
from traces.models import Trace, TraceStatus

PAGE_SIZE = 50
STEP_PAGE_SIZE = 500
WINDOWS = {
    "15m": ("Last 15 minutes", timedelta(minutes=15)),
    "1h": ("Last hour", timedelta(hours=1)),
    "6h": ("Last 6 hours", timedelta(hours=6)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}


class TraceFilterForm(forms.Form):
    agent = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *TraceStatus.choices])
    user_id = forms.CharField(required=False, max_length=200, label="User")
    model_version = forms.CharField(required=False, max_length=200, label="Model version")
    prompt_version = forms.CharField(required=False, max_length=200, label="Prompt version")
    tool = forms.CharField(required=False, max_length=200, label="Tool used")
    window = forms.ChoiceField(
        required=False, choices=[("", "Any time"), *((k, label) for k, (label, _) in WINDOWS.items())]
    )
    since = forms.DateTimeField(
        required=False, label="From", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        required=False, label="To", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    flagged = forms.ChoiceField(
        required=False, choices=[("", "Flagged or not"), ("yes", "Flagged only"), ("no", "Not flagged")]
    )
    cursor = forms.CharField(required=False, widget=forms.HiddenInput)
    limit = forms.IntegerField(required=False, min_value=1, max_value=200, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].choices = [("", "All agents"), *((a.slug, a.slug) for a in agent_list())]

    def selector_kwargs(self) -> dict:
        data = self.cleaned_data
        since = data.get("since")
        if data.get("window"):
            window_start = timezone.now() - WINDOWS[data["window"]][1]
            since = max(since, window_start) if since else window_start
        return {
            "agent": data.get("agent") or "",
            "status": data.get("status") or "",
            "user_id": (data.get("user_id") or "").strip(),
            "model_version": (data.get("model_version") or "").strip(),
            "prompt_version": (data.get("prompt_version") or "").strip(),
            "tool": (data.get("tool") or "").strip(),
            "since": since,
            "until": data.get("until"),
            "flagged": {"yes": True, "no": False}.get(data.get("flagged") or ""),
            "cursor": selectors.Cursor.decode(data["cursor"]) if data.get("cursor") else None,
            "limit": data.get("limit") or PAGE_SIZE,
        }


def trace_list(request):
    form = TraceFilterForm(request.GET or None)
    page, errors = None, None
    if not request.GET:
        page = selectors.trace_list(limit=PAGE_SIZE)
    elif form.is_valid():
        page = selectors.trace_list(**form.selector_kwargs())
    else:
        errors = form.errors
    embed = request.GET.get("embed") == "1"
    next_query = None
    if page and page.next_cursor:
        query = request.GET.copy()
        query["cursor"] = page.next_cursor
        query.pop("embed", None)
        next_query = query.urlencode()
    first_query = request.GET.copy()
    first_query.pop("cursor", None)
    first_query.pop("embed", None)
    context = {
        "form": form,
        "page": page,
        "errors": errors,
        "embed": embed,
        "next_query": next_query,
        "first_query": first_query.urlencode(),
        "is_later_page": bool(request.GET.get("cursor")),
    }
    template = "traces/trace_list.html#results" if request.htmx else "traces/trace_list.html"
    return render(request, template, context)


def trace_detail(request, trace_id: str):
    try:
        trace = selectors.trace_get(trace_id=trace_id)
    except Trace.DoesNotExist:
        raise Http404("No trace with this id.") from None
    try:
        offset = max(0, int(request.GET.get("offset", 0)))
    except ValueError:
        offset = 0
    steps = selectors.step_list(trace=trace, offset=offset, limit=STEP_PAGE_SIZE)
    return render(
        request,
        "traces/trace_detail.html",
        {
            "trace": trace,
            "steps": steps,
            "offset": offset,
            "last_index": offset + len(steps),
            "prev_offset": max(0, offset - STEP_PAGE_SIZE) if offset else None,
            "next_offset": offset + STEP_PAGE_SIZE if offset + STEP_PAGE_SIZE < trace.step_count else None,
            "text_limit": selectors.STEP_TEXT_LIMIT,
        },
    )
