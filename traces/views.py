from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from agents.selectors import agent_list
from core.actors import Actor
from core.replica import replica_reads
from core.roles import RESPONDER, role_required
from traces import hooks, services
from traces.models import Step, StepPayload, Trace, TraceStatus
from traces.presentation import diff_decorate, steps_decorate
from traces.selectors import golden, payloads, people, runs, trajectory
from traces.selectors.cursor import Cursor

PAGE_SIZE = 50
SEARCH_MAX = 200
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
    input_class = forms.CharField(required=False, max_length=200, label="Input class")
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
            "input_class": (data.get("input_class") or "").strip(),
            "tool": (data.get("tool") or "").strip(),
            "since": since,
            "until": data.get("until"),
            "flagged": {"yes": True, "no": False}.get(data.get("flagged") or ""),
            "cursor": Cursor.decode(data["cursor"]) if data.get("cursor") else None,
            "limit": data.get("limit") or PAGE_SIZE,
        }


@replica_reads
def trace_list(request):
    form = TraceFilterForm(request.GET or None)
    page, errors = None, None
    if not request.GET:
        page = runs.trace_list(limit=PAGE_SIZE)
    elif form.is_valid():
        page = runs.trace_list(**form.selector_kwargs())
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
        "filters_set": sum(1 for name in form.fields if request.GET.get(name, "").strip()),
        "retention_days": settings.FIREBREAK_RETENTION_DAYS,
    }
    template = "traces/trace_list.html#results" if request.htmx else "traces/trace_list.html"
    return render(request, template, context)


# --- the trajectory viewer ---------------------------------------------------------------------------
# The page opens at the end of the run (the last FIRST_SCREEN_STEPS steps);
# earlier and later pages, search results and a running trace's new steps are
# htmx fragments of the same template. Every field of a step is untrusted
# model or tool output: the templates only ever print it autoescaped.


def _trace_or_404(request, trace_id: str) -> Trace:
    """The trajectory the URL names: ``trace_id`` and ``?agent=<slug>`` (the default trajectory without it)."""
    agent = request.GET.get("agent", "").strip()[:63]
    try:
        return runs.trace_get(trace_id=trace_id, agent=agent)
    except Trace.DoesNotExist:
        if agent:
            raise Http404("No trajectory of this agent has this trace id.") from None
        raise Http404("No trace with this id.") from None


def _cursor(request, name: str) -> Cursor | None:
    raw = request.GET.get(name, "")
    return Cursor.decode(raw) if raw else None


def _viewer_context(trace: Trace, window: trajectory.StepWindow, *, mode: str, **extra) -> dict:
    """What every view of the trajectory renders with: the trace, its decorated steps, the controls."""
    skeleton = trajectory.step_skeleton(trace=trace)
    start, total_ms = trajectory.trace_time_bounds(trace=trace)
    steps = steps_decorate(window.steps, skeleton=skeleton, start=start, total_ms=total_ms)
    return {
        "trace": trace,
        "window": window,
        "steps": steps,
        "mode": mode,
        "total_steps": skeleton.total,
        "flag_position": skeleton.positions.get(trace.flagged_span_id, 0) if trace.flagged_span_id else 0,
        "text_limit": trajectory.STEP_TEXT_LIMIT,
        "page_size": trajectory.STEP_PAGE_STEPS,
        "is_running": trace.status == TraceStatus.RUNNING,
        "tail_cursor": "",
        "flag_url": f"{reverse('traces:trace-flag', args=[trace.trace_id])}?{trace.agent_query}",
        "finished_now": False,
        **extra,
    }


def _fragment_request(request, target: str) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request and request.htmx.target == target


@require_GET
@replica_reads
def trace_detail(request, trace_id: str):
    """The trajectory page. Opens at the end; ``before``/``after``/``at`` (a span id) choose another
    window of steps and ``q`` searches the trace, so each works without JavaScript too."""
    trace = _trace_or_404(request, trace_id)
    query = request.GET.get("q", "").strip()[:SEARCH_MAX]
    at = request.GET.get("at", "").strip()[:32]
    before, after = _cursor(request, "before"), _cursor(request, "after")
    window, mode = None, "window"
    if query:
        window, mode = trajectory.step_search(trace=trace, query=query), "search"
    elif at:
        window = trajectory.step_window_around(trace=trace, span_id=at)
    elif before:
        window = trajectory.step_window_before(trace=trace, cursor=before)
    elif after:
        window = trajectory.step_window_after(trace=trace, cursor=after)
    if window is None:
        window, mode = trajectory.step_window_last(trace=trace), "end"
    context = _viewer_context(trace, window, mode=mode, q=query)
    if _fragment_request(request, "trajectory"):
        return render(request, "traces/trace_detail.html#trajectory", context)
    context["golden"] = golden.trace_golden_get(trace=trace)
    context["linked"] = runs.trace_linked_list(trace=trace)
    context["flag_form"] = FlagForm(initial={"span_id": ""})
    return render(request, "traces/trace_detail.html", context)


@require_GET
@replica_reads
def trace_steps(request, trace_id: str):
    """htmx fragments of the step list: ``before`` (a page of earlier steps, with the next "earlier"
    control) or ``after`` (later steps; with ``poll=1`` a running trace's new steps, 204 when none)."""
    trace = _trace_or_404(request, trace_id)
    if not request.htmx:
        query = request.GET.copy()
        query["agent"] = trace.agent.slug
        return redirect(f"{reverse('traces:trace-detail', args=[trace.trace_id])}?{query.urlencode()}")
    before, after = _cursor(request, "before"), _cursor(request, "after")
    if before:
        window = trajectory.step_window_before(trace=trace, cursor=before)
        return render(request, "traces/trace_detail.html#earlier", _viewer_context(trace, window, mode="page"))
    poll = request.GET.get("poll") == "1"
    if not after and not poll:
        return HttpResponse("Give before or after.", status=400)
    window = trajectory.step_window_after(trace=trace, cursor=after)
    still_running = trace.status == TraceStatus.RUNNING
    if poll and not window.steps and still_running:
        return HttpResponse(status=204)  # nothing new: htmx keeps polling
    context = _viewer_context(trace, window, mode="poll" if poll else "page", oob=poll)
    context["finished_now"] = poll and not still_running
    if not window.steps and after:
        # Nothing new after the last step shown: the tail control keeps its place.
        context["tail_cursor"] = after.encode()
    return render(request, "traces/trace_detail.html#later", context)


TEXT_FIELDS = {"output": "Output", "input": "Input"}


@require_GET
@replica_reads
def step_text(request, trace_id: str, span_id: str, field: str):
    """The full input or output of one step (the page shows the first STEP_TEXT_LIMIT characters)."""
    if field not in TEXT_FIELDS:
        raise Http404("A step has an input and an output.")
    trace = _trace_or_404(request, trace_id)
    try:
        step = trajectory.step_get(trace=trace, span_id=span_id)
    except Step.DoesNotExist:
        raise Http404("This trace has no such step.") from None
    if field in payloads.step_apart_fields(step):
        return _value_response(request, trace, step, field)
    context = {"trace": trace, "step": step, "field": field, "label": TEXT_FIELDS[field], "text": getattr(step, field)}
    template = "traces/step_text.html#text" if request.htmx else "traces/step_text.html"
    return render(request, template, context)


VALUE_SHOW_CHARS = 1_000_000  # of a value stored apart, shown on the page; the whole of it is a download


@require_GET
@replica_reads
def step_value(request, trace_id: str, span_id: str):
    """The full value of a field stored apart (``?field=``: input, output, tool_arguments, attributes.<key>),
    as text; ``?download=1`` serves all of it as a text/plain attachment."""
    trace = _trace_or_404(request, trace_id)
    field = request.GET.get("field", "")
    try:
        step = trajectory.step_get(trace=trace, span_id=span_id)
    except Step.DoesNotExist:
        raise Http404("This trace has no such step.") from None
    return _value_response(request, trace, step, field)


def _value_response(request, trace: Trace, step: Step, field: str) -> HttpResponse:
    try:
        value = payloads.step_value_get(trace=trace, span_id=step.span_id, field=field)
    except StepPayload.DoesNotExist:
        raise Http404("This step has no value of that name stored apart.") from None
    if request.GET.get("download") == "1":
        response = HttpResponse(value.text, content_type="text/plain; charset=utf-8")
        extension = "json" if value.content_type == "application/json" else "txt"
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in field)[:80]
        response["Content-Disposition"] = f'attachment; filename="{step.span_id}-{name}.{extension}"'
        response["X-Content-Type-Options"] = "nosniff"
        return response
    context = {
        "trace": trace,
        "step": step,
        "field": field,
        "label": TEXT_FIELDS.get(field, field),
        "text": value.text[:VALUE_SHOW_CHARS],
        "total_chars": len(value.text),
        "cut": len(value.text) > VALUE_SHOW_CHARS,
        "size": value.size,
        "download_url": f"{reverse('traces:step-value', args=[trace.trace_id, step.span_id])}?"
        + urlencode({"agent": trace.agent.slug, "field": field, "download": "1"}),
    }
    template = "traces/step_text.html#value" if request.htmx else "traces/step_text.html"
    return render(request, template, context)


class FlagForm(forms.Form):
    # Lengths and emptiness are checked by services.trace_flag, the one place the rules live.
    span_id = forms.CharField(required=False, max_length=64)
    note = forms.CharField(required=False, max_length=5000, widget=forms.TextInput)


@role_required(RESPONDER)
def trace_flag(request, trace_id: str):
    """Flag a step as where the run went off the rails. GET shows the form (for use without JavaScript)."""
    trace = _trace_or_404(request, trace_id)
    if request.method == "GET":
        form = FlagForm(initial={"span_id": request.GET.get("span_id", "")[:64]})
        return render(request, "traces/trace_flag.html", {"trace": trace, "flag_form": form})
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    form = FlagForm(request.POST)
    previous = trace.flagged_span_id
    if form.is_valid():
        try:
            services.trace_flag(
                trace=trace,
                span_id=form.cleaned_data["span_id"],
                note=form.cleaned_data["note"],
                actor=Actor.from_request(request),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
    if form.errors:
        context = {"trace": trace, "flag_form": form, "flag_form_open": True}
        if request.htmx:
            return render(request, "traces/trace_detail.html#flag_form", context, status=422)
        return render(request, "traces/trace_flag.html", context, status=422)
    skeleton = trajectory.step_skeleton(trace=trace)
    position = skeleton.positions.get(trace.flagged_span_id, 0)
    message = f"Step #{position} flagged as where the run went off the rails."
    if not request.htmx:
        messages.success(request, message)
        return redirect(f"{trace.get_absolute_url()}&at={trace.flagged_span_id}#step-{trace.flagged_span_id}")
    response = render(
        request,
        "traces/trace_detail.html#flag_saved",
        {
            "trace": trace,
            "flag_form": FlagForm(initial={"span_id": ""}),
            "flag_position": position,
            "previous_span_id": previous if previous != trace.flagged_span_id else "",
            "oob": True,
        },
    )
    trigger_client_event(response, "fb:notice", {"message": message})
    return response


@require_POST
@role_required(RESPONDER)
def trace_unflag(request, trace_id: str):
    trace = _trace_or_404(request, trace_id)
    services.trace_unflag(trace=trace, actor=Actor.from_request(request))
    messages.success(request, "Flag removed.")
    return redirect(trace.get_absolute_url())


@require_POST
@role_required(RESPONDER)
def trace_golden(request, trace_id: str):
    trace = _trace_or_404(request, trace_id)
    try:
        services.trace_golden_set(trace=trace, actor=Actor.from_request(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"This run is now the golden trajectory for “{trace.input_class}”.")
    return redirect(trace.get_absolute_url())


@require_GET
@replica_reads
def trace_diff(request, trace_id: str):
    """This trace's tool calls side by side with the golden run of its input class."""
    trace = _trace_or_404(request, trace_id)
    golden_trace = golden.trace_golden_get(trace=trace)
    diff = None
    if golden_trace is not None and golden_trace.pk != trace.pk:
        diff = diff_decorate(golden.trajectory_diff(trace=trace, golden=golden_trace))
    return render(
        request,
        "traces/trace_diff.html",
        {"trace": trace, "golden": golden_trace, "diff": diff, "diff_max": golden.DIFF_MAX_CALLS},
    )


# --- a session's and a user's runs -------------------------------------------------------------------


def _runs_context(request, page: people.RunPage) -> dict:
    next_query = None
    if page.next_cursor:
        query = request.GET.copy()
        query["cursor"] = page.next_cursor
        next_query = query.urlencode()
    return {"page": page, "next_query": next_query, "is_later_page": bool(request.GET.get("cursor"))}


@require_GET
@replica_reads
def session_detail(request, session_id: str):
    """A session's runs in time order with their totals; an unknown session is an empty page."""
    page = people.session_runs(session_id=session_id, cursor=_cursor(request, "cursor"), limit=people.PAGE)
    context = {"session_id": session_id, **_runs_context(request, page)}
    return render(request, "traces/session_detail.html", context)


@require_GET
@replica_reads
def user_detail(request, user_id: str):
    """A user's runs across sessions and agents, newest first, with totals and the incidents and alerts
    linked to them; an unknown user is an empty page."""
    page = people.user_runs(user_id=user_id, cursor=_cursor(request, "cursor"), limit=people.PAGE)
    context = {"user_id": user_id, "links": hooks.user_links_for(user_id), **_runs_context(request, page)}
    return render(request, "traces/user_detail.html", context)
