"""Blast radius pages: the panel (an htmx fragment, or a full page without JS), its save, the CSV."""

import csv
from datetime import UTC
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import trigger_client_event

from core.actors import Actor
from core.roles import RESPONDER, has_role
from incidents.blast_radius.export import csv_rows
from incidents.blast_radius.selectors import blast_radius
from incidents.blast_radius.services import blast_radius_record
from incidents.blast_radius.signature import (
    DEFAULT_LOOKBACK,
    PARAMS,
    BlastParamError,
    BlastSignature,
    signature_default,
    signature_parse,
)
from incidents.selectors import incident_get_or_404

FORM_PARAMS = (*PARAMS, "since", "until")


def _has_params(params) -> bool:
    return any((params.get(name) or "").strip() for name in FORM_PARAMS)


def _local(value) -> str:
    """A datetime as the value of a datetime-local input, in UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if value else ""


def _form_values(params, signature: BlastSignature | None, since=None) -> dict:
    if params is not None and _has_params(params):
        values = {name: (params.get(name) or "").strip() for name in FORM_PARAMS if name != "agent"}
        agents = params.getlist("agent") if hasattr(params, "getlist") else []
        values["agent"] = ", ".join(a.strip() for a in agents if a.strip())
        return values
    values = {name: "" for name in FORM_PARAMS}
    if signature is not None:
        values.update({k: v for k, v in signature.as_dict().items() if k != "agents"})
        values["agent"] = ", ".join(signature.agents)
    values["since"] = _local(since)
    return values


def _render(request, incident, *, values, result=None, error=None, saved=None, status=200):
    query = ""
    if result is not None:
        query = urlencode(
            [*result.signature.as_params(), ("since", result.since.isoformat()), ("until", result.until.isoformat())]
        )
    context = {
        "incident": incident,
        "values": values,
        "result": result,
        "error": error,
        "saved": saved,
        "query": query,
        "can_respond": has_role(request.user, RESPONDER),
        "incident_url": reverse("incidents:incident-detail", args=[incident.number]),
        "panel_url": reverse("incidents:blast-radius", args=[incident.number]),
        "csv_url": reverse("incidents:blast-radius-csv", args=[incident.number]),
        "quiet_minutes": settings.FIREBREAK_RUN_QUIET_MINUTES,
    }
    template = "incidents/_blast_radius.html" if request.htmx else "incidents/blast_radius.html"
    if error and request.htmx:
        status = 200  # htmx does not swap 4xx answers; the error shows in the panel
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _error_text(exc: BlastParamError) -> str:
    return f"{exc.param}: {exc.message}"


@require_http_methods(["GET", "POST"])
def blast_radius_panel(request, number: int):
    incident = incident_get_or_404(number=number)
    if request.method == "POST":
        return _save(request, incident)
    if _has_params(request.GET):
        values = _form_values(request.GET, None)
        try:
            signature, since, until = signature_parse(request.GET, incident=incident)
        except BlastParamError as exc:
            return _render(request, incident, values=values, error=_error_text(exc), status=400)
    else:
        signature, _trace = signature_default(incident=incident)
        since, until = incident.declared_at - DEFAULT_LOOKBACK, timezone.now()
        values = _form_values(None, signature, since=since)
        if signature.is_empty:
            return _render(request, incident, values=values)
    result = blast_radius(signature=signature, since=since, until=until)
    return _render(request, incident, values=values, result=result)


def _save(request, incident):
    if not has_role(request.user, RESPONDER):
        raise PermissionDenied(f"This needs the {RESPONDER} role.")
    values = _form_values(request.POST, None)
    try:
        signature, since, until = signature_parse(request.POST, incident=incident)
    except BlastParamError as exc:
        return _render(request, incident, values=values, error=_error_text(exc), status=400)
    result, entry = blast_radius_record(
        incident=incident, signature=signature, since=since, until=until, actor=Actor.from_request(request)
    )
    if request.htmx:
        response = _render(request, incident, values=values, result=result, saved=entry)
        trigger_client_event(response, "fb:timeline-changed", {"incident": incident.number})
        trigger_client_event(response, "fb:notice", {"message": "Blast radius saved to the timeline."})
        return response
    messages.success(request, "Blast radius saved to the timeline.")
    query = urlencode([*signature.as_params(), ("since", since.isoformat()), ("until", until.isoformat())])
    return redirect(f"{reverse('incidents:blast-radius', args=[incident.number])}?{query}")


class _Echo:
    def write(self, value):
        return value


@require_GET
def blast_radius_csv(request, number: int):
    incident = incident_get_or_404(number=number)
    params = request.GET
    if not _has_params(params):
        signature, _trace = signature_default(incident=incident)
        params = {**dict(signature.as_params()), "agent": list(signature.agents)}
    try:
        signature, since, until = signature_parse(params, incident=incident)
    except BlastParamError as exc:
        return HttpResponse(_error_text(exc), status=400, content_type="text/plain; charset=utf-8")
    writer = csv.writer(_Echo())
    rows = (writer.writerow(row) for row in csv_rows(signature=signature, since=since, until=until))
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{incident.ref}-blast-radius.csv"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
