"""Post-mortem pages and the metrics page: viewers read, responders write (each write calls one service).

Every write works as a plain form post (redirect back to the page) and, with htmx, answers with
the fragment that changed.
"""

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from core.actors import Actor
from core.errors import error_messages
from core.forms import form_errors_add
from core.markdown import render_markdown
from core.roles import RESPONDER, has_role, role_required
from incidents.blast_radius.selectors import blast_radius_last
from incidents.integrations.trackers import clients as tracker_clients
from incidents.integrations.trackers import selectors as tracker_selectors
from incidents.integrations.trackers import services as tracker_services
from incidents.models import ActionItem, Incident, PostMortem
from incidents.postmortems import metrics as metrics_selectors
from incidents.postmortems import selectors, services
from incidents.postmortems.forms import ActionItemForm, PostMortemForm
from incidents.selectors import incident_get_or_404
from traces.models import Trace
from traces.selectors.runs import trace_get_by_ref

PARTIAL = "incidents/postmortem_detail.html#{}"


def _postmortem_or_404(incident: Incident) -> PostMortem:
    postmortem = selectors.postmortem_get(incident=incident)
    if postmortem is None:
        raise Http404("This incident has no post-mortem yet.")
    return postmortem


def _page_url(incident: Incident, anchor: str = "") -> str:
    url = reverse("incidents:postmortem", args=[incident.number])
    return f"{url}#{anchor}" if anchor else url


def _refuse(request, incident: Incident, error: ValidationError, anchor: str = ""):
    for message in error_messages(error):
        messages.error(request, message)
    return redirect(_page_url(incident, anchor))


def _items_context(postmortem: PostMortem, form: ActionItemForm | None = None) -> dict:
    items = list(postmortem.action_items.select_related("owner").order_by("status", "due_date", "id"))
    issue_errors = tracker_selectors.issue_errors(postmortem=postmortem)
    for item in items:
        item.issue_error = issue_errors.get(item.pk, "")  # type: ignore[attr-defined]
    return {
        "items": items,
        "items_warning": selectors.action_items_warning(items),
        "item_form": form or ActionItemForm(),
        "item_statuses": ActionItem.Status.choices,
        "trackers": [(t, tracker_clients.LABELS[t]) for t in tracker_clients.trackers_configured()],
    }


def _sections(postmortem: PostMortem) -> list[dict]:
    return [
        {**section, "html": render_markdown(section.get("body") or ""), "draft": ""} for section in postmortem.sections
    ]


def _editor_sections(postmortem: PostMortem, excerpts: list, form: PostMortemForm | None = None) -> list[dict]:
    """The sections as the editor shows them: ``value`` in the textarea, ``base`` its hash (what it was
    loaded with), ``errors`` next to it. After a refused save, what was typed and its errors."""
    sections = _sections(postmortem)
    for section in sections:
        if section["key"] == "tool_calls" and not section.get("body"):
            # Starts from the attached trajectories' calls, for the author to edit and save.
            section["draft"] = selectors.tool_calls_draft(excerpts)
        section["value"] = section.get("body") or section["draft"]
        section["base"] = services.postmortem_body_hash(section["value"])
        section["errors"] = []
    if form is not None:
        errors = form.section_errors()
        for section in sections:
            key = section["key"]
            if f"body_{key}" in form.data:
                section["value"] = form.data[f"body_{key}"]
                section["base"] = form.data.get(f"base_{key}") or section["base"]
            section["errors"] = errors.get(key, [])
    return sections


def _detail_context(request, incident: Incident, form: PostMortemForm | None = None) -> dict[str, Any]:
    postmortem = selectors.postmortem_get(incident=incident)
    context: dict[str, Any] = {
        "incident": incident,
        "postmortem": postmortem,
        "timeline": selectors.postmortem_timeline(incident=incident),
        "blast": blast_radius_last(incident=incident),
    }
    if postmortem is None:
        templates = list(selectors.postmortem_template_list())
        context["templates"] = templates
        context["default_template"] = selectors.postmortem_template_default(incident=incident, templates=templates)
        return context
    editable = postmortem.status != PostMortem.Status.PUBLISHED and has_role(request.user, RESPONDER)
    excerpts = selectors.postmortem_trace_excerpts(postmortem=postmortem)
    context.update(
        {
            "sections": _editor_sections(postmortem, excerpts, form) if editable else _sections(postmortem),
            "editable": editable,
            "save_errors": form.non_field_errors() if form is not None else [],
            "excerpts": excerpts,
            "attachable": [t for t in incident.traces.all() if t not in postmortem.attached_traces.all()],
            "needs": selectors.postmortem_publish_needs(postmortem=postmortem),
            **_items_context(postmortem),
        }
    )
    return context


@require_GET
def postmortem_detail(request, number: int):
    incident = incident_get_or_404(number=number)
    return render(request, "incidents/postmortem_detail.html", _detail_context(request, incident))


@require_POST
@role_required(RESPONDER)
def postmortem_start(request, number: int):
    incident = incident_get_or_404(number=number)
    template = selectors.postmortem_template_get(pk=request.POST.get("template"))
    try:
        services.postmortem_start(incident=incident, template=template, actor=Actor.from_request(request))
    except ValidationError as error:
        return _refuse(request, incident, error)
    messages.success(request, "Post-mortem started.")
    return redirect(_page_url(incident))


@require_POST
@role_required(RESPONDER)
def postmortem_save(request, number: int):
    """Save every section at once (the Save button and the autosave post here).

    With htmx: the save status fragment, and out of band the loaded-body hashes, each section's errors
    and the publishing banner; ``pm:saved`` is triggered when the save went through. Without: a
    redirect, or the page with what was typed and the errors next to their sections.
    """
    incident = incident_get_or_404(number=number)
    postmortem = _postmortem_or_404(incident)
    form = PostMortemForm(request.POST, sections=postmortem.sections)
    written: list[str] = []
    if form.is_valid():
        try:
            written = services.postmortem_sections_save(
                postmortem=postmortem, bodies=form.bodies(), loaded=form.loaded(), actor=Actor.from_request(request)
            )
        except ValidationError as error:
            form.add_service_error(error)
    failed = bool(form.errors)
    if request.htmx:
        titles = {str(s.get("key")): s.get("title") or s.get("key") for s in postmortem.sections}
        why = [str(e) for e in form.non_field_errors()]
        errors = form.section_errors()
        why += [f"“{titles[key]}” {m}" for key, messages in errors.items() for m in messages]
        # What the editor now holds counts as loaded: the next save compares against it.
        bases: dict[str, str] = {}
        if not failed:
            posted = form.bodies()
            for section in postmortem.sections:
                key = str(section.get("key"))
                bases[key] = services.postmortem_body_hash(posted.get(key, section.get("body", "")))
        context = {
            "incident": incident,
            "postmortem": postmortem,
            "failed": failed,
            "why": why,
            "written": written,
            "saved_at": timezone.now(),
            "error_sections": [{"key": key, "errors": errors.get(key, [])} for key in form.keys],
            "bases": bases,
            "needs": selectors.postmortem_publish_needs(postmortem=postmortem),
        }
        response = render(request, PARTIAL.format("save_result"), context)
        if not failed:
            trigger_client_event(response, "pm:saved", {"written": written})
        return response
    if failed and form.section_errors():
        return render(request, "incidents/postmortem_detail.html", _detail_context(request, incident, form), status=400)
    if failed:  # nothing to show next to a section (a published post-mortem): say it on the page
        return _refuse(request, incident, ValidationError([str(e) for e in form.non_field_errors()]))
    messages.success(request, "Post-mortem saved." if written else "Nothing had changed.")
    return redirect(_page_url(incident))


@require_POST
@role_required(RESPONDER)
def postmortem_preview(request, number: int):
    """The Markdown of ``body`` rendered and sanitized, for the live preview (writes nothing)."""
    incident_get_or_404(number=number)
    key = request.GET.get("section", "")
    body = request.POST.get(f"body_{key}" if key else "body", "")[: services.SECTION_BODY_MAX]
    html = render_markdown(body)
    return HttpResponse(html or '<p class="muted"><em>Nothing to preview.</em></p>')


@require_POST
@role_required(RESPONDER)
def postmortem_trace_attach(request, number: int):
    incident = incident_get_or_404(number=number)
    postmortem = _postmortem_or_404(incident)
    # ``<trace_id>`` or ``<trace_id>@<agent>`` (a trace id may hold several agents' trajectories).
    trace_id = request.POST.get("trace_id", "").strip()[:100]
    try:
        trace = trace_get_by_ref(ref=trace_id)
    except Trace.DoesNotExist:
        return _refuse(request, incident, ValidationError(f"No trace with the id “{trace_id}”."), "traces")
    try:
        services.postmortem_trace_attach(postmortem=postmortem, trace=trace, actor=Actor.from_request(request))
    except ValidationError as error:
        return _refuse(request, incident, error, "traces")
    return redirect(_page_url(incident, "traces"))


@require_POST
@role_required(RESPONDER)
def postmortem_trace_detach(request, number: int, trace_id: str):
    incident = incident_get_or_404(number=number)
    postmortem = _postmortem_or_404(incident)
    attached = postmortem.attached_traces.filter(trace_id=trace_id)
    if agent := request.GET.get("agent", "").strip():
        attached = attached.filter(agent__slug=agent[:63])
    trace = attached.order_by("pk").first()
    if trace is None:
        raise Http404("No such trace attached.")
    try:
        services.postmortem_trace_detach(postmortem=postmortem, trace=trace, actor=Actor.from_request(request))
    except ValidationError as error:
        return _refuse(request, incident, error, "traces")
    return redirect(_page_url(incident, "traces"))


def _items_response(
    request, incident: Incident, postmortem: PostMortem, form=None, status: int = 200, refusal: list[str] | None = None
):
    context = {
        "incident": incident,
        "postmortem": postmortem,
        "items_refusal": refusal or [],
        **_items_context(postmortem, form),
    }
    return render(request, PARTIAL.format("action_items"), context, status=status)


@require_POST
@role_required(RESPONDER)
def action_item_add(request, number: int):
    incident = incident_get_or_404(number=number)
    postmortem = _postmortem_or_404(incident)
    form: ActionItemForm | None  # None once the item is added: an empty form is shown
    form = ActionItemForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.action_item_add(
                postmortem=postmortem,
                title=data["title"],
                kind=data["kind"],
                owner=data["owner"],
                due_date=data["due_date"],
                actor=Actor.from_request(request),
            )
        except ValidationError as error:
            form_errors_add(form, error)
        else:
            form = None
    if request.htmx:
        return _items_response(request, incident, postmortem, form)
    if form is not None:
        for field_errors in form.errors.values():
            for message in field_errors:
                messages.error(request, str(message))
    return redirect(_page_url(incident, "action-items"))


@require_POST
@role_required(RESPONDER)
def action_item_status(request, number: int, item_id: int):
    incident = incident_get_or_404(number=number)
    postmortem = _postmortem_or_404(incident)
    item = get_object_or_404(ActionItem, pk=item_id, postmortem=postmortem)
    try:
        services.action_item_status_set(
            item=item, status=request.POST.get("status", ""), actor=Actor.from_request(request)
        )
    except ValidationError as error:
        if not request.htmx:
            return _refuse(request, incident, error, "action-items")
        return HttpResponse("; ".join(error_messages(error)), status=400)
    if request.htmx:
        return _items_response(request, incident, postmortem)
    return redirect(_page_url(incident, "action-items"))


@require_POST
@role_required(RESPONDER)
def action_item_issue(request, number: int, item_id: int):
    """ "Create in Jira/Linear/GitHub": the same service as the API; the issue is created in the background."""
    incident = incident_get_or_404(number=number)
    postmortem = _postmortem_or_404(incident)
    item = get_object_or_404(ActionItem, pk=item_id, postmortem=postmortem)
    try:
        tracker_services.action_item_issue_request(
            item=item, tracker=request.POST.get("tracker", ""), actor=Actor.from_request(request)
        )
    except ValidationError as error:
        if not request.htmx:
            return _refuse(request, incident, error, "action-items")
        # Shown in the card (htmx swaps a 200 only); the API answers 400/409 for the same refusals.
        return _items_response(request, incident, postmortem, refusal=error_messages(error))
    if request.htmx:
        return _items_response(request, incident, postmortem)
    messages.success(request, f"Creating the issue in {item.get_tracker_display()}…")
    return redirect(_page_url(incident, "action-items"))


@require_POST
@role_required(RESPONDER)
def postmortem_status(request, number: int):
    incident = incident_get_or_404(number=number)
    postmortem = _postmortem_or_404(incident)
    status = request.POST.get("status", "")
    try:
        services.postmortem_status_set(postmortem=postmortem, status=status, actor=Actor.from_request(request))
    except ValidationError as error:
        return _refuse(request, incident, error)
    messages.success(request, f"Post-mortem {postmortem.get_status_display().lower()}.")
    return redirect(_page_url(incident))


@require_GET
def postmortem_export(request, number: int):
    incident = incident_get_or_404(number=number)
    postmortem = _postmortem_or_404(incident)
    text = selectors.postmortem_markdown(incident=incident, postmortem=postmortem)
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{incident.ref}-postmortem.md"'
    return response


@require_GET
def postmortem_print(request, number: int):
    incident = incident_get_or_404(number=number)
    postmortem = _postmortem_or_404(incident)
    items = list(postmortem.action_items.select_related("owner"))
    return render(
        request,
        "incidents/postmortem_print.html",
        {
            "incident": incident,
            "postmortem": postmortem,
            "sections": _sections(postmortem),
            "timeline": selectors.postmortem_timeline(incident=incident),
            "blast": blast_radius_last(incident=incident),
            "excerpts": selectors.postmortem_trace_excerpts(postmortem=postmortem),
            "items": items,
            "items_warning": selectors.action_items_warning(items),
        },
    )


@require_GET
def metrics(request):
    by_class = metrics_selectors.incidents_per_failure_class()
    times = metrics_selectors.time_to_contain_resolve()
    recurrence = metrics_selectors.recurrence()
    backlog = metrics_selectors.postmortem_backlog()
    return render(
        request,
        "incidents/incident_metrics.html",
        {
            "by_class": by_class,
            "times": times,
            "recurrence": recurrence,
            "backlog": backlog,
            "backlog_chart": {
                "labels": ["Draft", "In review", "Overdue", "Not started (deadline set)"],
                "values": [backlog["draft"], backlog["in_review"], backlog["overdue"], backlog["missing"]],
            },
            "any_chart": by_class["total"] > 0,
        },
    )
