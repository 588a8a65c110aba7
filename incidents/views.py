from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from core.actors import Actor
from core.errors import error_messages
from core.forms import form_errors_add
from core.replica import replica_reads
from core.roles import RESPONDER, has_role, role_required
from incidents import selectors, services
from incidents.forms import IncidentDeclareForm, NoteForm, declare_initial
from incidents.models import STATUS_ORDER, Incident, IncidentStatus, RunbookStep, Severity
from incidents.notifications.deliveries import delivery_list
from incidents.notifications.selectors import SHOWN as DELIVERIES_SHOWN


@replica_reads
def incident_list(request):
    status = request.GET.get("status", "")
    severity = request.GET.get("severity", "")
    open_only = request.GET.get("open") == "1"
    incidents = selectors.incident_list(
        status=status if status in IncidentStatus.values else "",
        severity=severity if severity in Severity.values else "",
        open_only=open_only,
    )
    return render(
        request,
        "incidents/incident_list.html",
        {
            "incidents": incidents,
            "statuses": IncidentStatus.choices,
            "severities": Severity.choices,
            "status": status,
            "severity": severity,
            "open_only": open_only,
        },
    )


def incident_new(request):
    """Viewers see the vocabulary; responders get the form, pre-filled from ?trace, ?agent or ?alert."""
    can_declare = has_role(request.user, RESPONDER)
    if request.method == "POST":
        if not can_declare:
            raise PermissionDenied("Declaring an incident needs the responder role.")
        form = IncidentDeclareForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                incident = services.incident_declare(
                    title=data["title"],
                    severity=data["severity"],
                    failure_class=data["failure_class"],
                    agents=list(data["agents"]),
                    traces=data["traces"],
                    commander=data["commander"],
                    summary=data["summary"],
                    actor=Actor.from_request(request),
                    alert=data["alert"],
                )
            except ValidationError as exc:
                form_errors_add(form, exc)
            else:
                messages.success(request, f"{incident.ref} declared.")
                return redirect("incidents:incident-detail", number=incident.number)
    else:
        form = IncidentDeclareForm(initial=declare_initial(request.GET, request.user))
    fcs = list(selectors.failure_class_list())
    return render(
        request,
        "incidents/incident_new.html",
        {
            "form": form,
            "can_declare": can_declare,
            "failure_classes": fcs,
            "failure_class_by_slug": {fc.slug: fc for fc in fcs},
            "severities": selectors.severity_list(),
        },
        status=400 if request.method == "POST" else 200,
    )


def _detail_context(request, incident: Incident, note_form: NoteForm | None = None) -> dict:
    current = STATUS_ORDER.index(incident.status)
    return {
        "incident": incident,
        "is_drill": incident.agents.filter(is_drill=True).exists(),
        "status_history": selectors.incident_status_history(incident=incident),
        "timeline": selectors.timeline_list(incident=incident),
        "runbook": selectors.runbook_by_phase(incident=incident),
        "blockers": selectors.incident_close_blockers(incident),
        "loose_ends": selectors.incident_loose_ends(incident),
        "failure_classes": selectors.failure_class_list(),
        "next_statuses": [
            (s.value, s.label) for s in IncidentStatus if STATUS_ORDER.index(s.value) > current and s != "closed"
        ],
        "severities": Severity.choices,
        "note_form": note_form or NoteForm(),
        "deliveries": delivery_list(incident=incident, limit=DELIVERIES_SHOWN),
        "changes": selectors.incident_change_list(incident=incident),
    }


def incident_detail(request, number: int):
    incident = selectors.incident_get_or_404(number=number)
    context = _detail_context(request, incident)
    part = request.GET.get("part")
    if request.htmx and part in ("timeline", "runbook", "close"):
        return render(request, f"incidents/incident_detail.html#{part}", context)
    return render(request, "incidents/incident_detail.html", context)


# --- writes ---------------------------------------------------------------------------------------
# Each is a POST form that works without JavaScript (redirect back with a
# message); with htmx the note and runbook forms get their fragment back.


def _back(incident: Incident, anchor: str = "", request=None) -> HttpResponse:
    """Back to the incident page, or to the form's ``next`` when it is a page of this site (the close page)."""
    nxt = request.POST.get("next", "") if request is not None else ""
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}):
        return redirect(nxt)
    return redirect(reverse("incidents:incident-detail", args=[incident.number]) + (f"#{anchor}" if anchor else ""))


def _refused(request, incident: Incident, exc: ValidationError | PermissionDenied, anchor: str = ""):
    if isinstance(exc, PermissionDenied):
        raise exc
    text = "; ".join(error_messages(exc))
    if request.htmx:
        response = HttpResponse(status=204)
        trigger_client_event(response, "fb:error", {"message": text})
        return response
    messages.error(request, text)
    return _back(incident, anchor)


def _changed(response: HttpResponse) -> HttpResponse:
    trigger_client_event(response, "fb:incident-changed", {})
    return response


@require_POST
@role_required(RESPONDER)
def incident_status(request, number: int):
    incident = selectors.incident_get_or_404(number=number)
    status = request.POST.get("status", "")
    try:
        services.incident_status_set(
            incident=incident, status=status, actor=Actor.from_request(request), note=request.POST.get("note", "")
        )
    except ValidationError as exc:
        return _refused(request, incident, exc, "status")
    messages.success(request, f"{incident.ref} is {incident.get_status_display().lower()}.")
    return _back(incident, "status", request)


@require_POST
@role_required(RESPONDER)
def incident_severity(request, number: int):
    incident = selectors.incident_get_or_404(number=number)
    try:
        services.incident_severity_set(
            incident=incident, severity=request.POST.get("severity", ""), actor=Actor.from_request(request)
        )
    except ValidationError as exc:
        return _refused(request, incident, exc, "status")
    messages.success(request, f"{incident.ref} is now {incident.severity}.")
    return _back(incident, "status")


def _close_confirm(request, incident: Incident, note: str, *, status: int) -> HttpResponse:
    return render(
        request,
        "incidents/incident_close_confirm.html",
        {"incident": incident, "loose_ends": selectors.incident_loose_end_items(incident), "note": note},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@role_required(RESPONDER)
def incident_close(request, number: int):
    """Close; with loose ends and no ``confirm=1`` a page lists them, each with the button that ties it
    (resume the agent, resolve the alerts, mark Resolved), and asks to confirm. GET shows that page."""
    incident = selectors.incident_get_or_404(number=number)
    if request.method == "GET":
        if incident.status == IncidentStatus.CLOSED or not selectors.incident_loose_ends(incident):
            return _back(incident, "close")
        return _close_confirm(request, incident, "", status=200)
    note = request.POST.get("note", "")
    try:
        services.incident_close(
            incident=incident, actor=Actor.from_request(request), note=note, confirm=request.POST.get("confirm") == "1"
        )
    except services.LooseEnds:
        return _close_confirm(request, incident, note, status=409)
    except ValidationError as exc:
        messages.error(request, "Cannot close yet: " + "; ".join(error_messages(exc)))
        return _back(incident, "close")
    messages.success(request, f"{incident.ref} closed.")
    return _back(incident)


@require_POST
@role_required(RESPONDER)
def incident_command_take(request, number: int):
    incident = selectors.incident_get_or_404(number=number)
    try:
        services.incident_command_take(incident=incident, actor=Actor.from_request(request))
    except ValidationError as exc:
        return _refused(request, incident, exc, "status")
    messages.success(request, f"You are the commander of {incident.ref}.")
    return _back(incident, "status")


@require_POST
@role_required(RESPONDER)
def incident_failure_class(request, number: int):
    incident = selectors.incident_get_or_404(number=number)
    try:
        services.incident_failure_class_set(
            incident=incident, failure_class=request.POST.get("failure_class", ""), actor=Actor.from_request(request)
        )
    except ValidationError as exc:
        return _refused(request, incident, exc, "status")
    assert incident.failure_class is not None  # the service set it or raised
    messages.success(request, f"{incident.ref} is classified as {incident.failure_class.name}.")
    return _back(incident, "status")


@require_POST
@role_required(RESPONDER)
def note_add(request, number: int):
    incident = selectors.incident_get_or_404(number=number)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            services.timeline_note_add(
                incident=incident, body=form.cleaned_data["body"], actor=Actor.from_request(request)
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
    if request.htmx:
        context = _detail_context(request, incident, note_form=form if form.errors else None)
        response = render(request, "incidents/incident_detail.html#timeline", context, status=200)
        return response
    if form.errors:
        # An ErrorList yields its messages as str (the stubs allow ValidationError too).
        messages.error(request, "; ".join(str(e) for errs in form.errors.values() for e in errs))
    return _back(incident, "timeline")


@require_POST
@role_required(RESPONDER)
def runbook_tick(request, number: int, step_id: int):
    incident = selectors.incident_get_or_404(number=number)
    done = request.POST.get("done", "1") == "1"
    try:
        services.runbook_tick(incident=incident, step_id=step_id, actor=Actor.from_request(request), done=done)
    except RunbookStep.DoesNotExist:
        raise Http404("No such runbook step.") from None
    except ValidationError:
        pass  # already in that state (a double click): show the runbook as it is
    if request.htmx:
        return _changed(render(request, "incidents/incident_detail.html#runbook", _detail_context(request, incident)))
    return _back(incident, "runbook")
