from django.http import Http404
from django.shortcuts import render

from incidents import selectors
from incidents.models import Incident, IncidentStatus, Severity


def _incident_or_404(number: int) -> Incident:
    try:
        return selectors.incident_get(number=number)
    except Incident.DoesNotExist:
        raise Http404("No incident with this number.") from None


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
    # Declaring lands with the incidents work; until then this page shows the
    # vocabulary a responder declares with.
    return render(
        request,
        "incidents/incident_new.html",
        {"failure_classes": selectors.failure_class_list(), "severities": selectors.severity_list()},
    )


def incident_detail(request, number: int):
    incident = _incident_or_404(number)
    return render(
        request,
        "incidents/incident_detail.html",
        {
            "incident": incident,
            "status_history": selectors.incident_status_history(incident=incident),
            "timeline": selectors.timeline_list(incident=incident),
        },
    )


def postmortem_detail(request, number: int):
    incident = _incident_or_404(number)
    postmortem = selectors.postmortem_get(incident=incident)
    return render(
        request,
        "incidents/postmortem_detail.html",
        {
            "incident": incident,
            "postmortem": postmortem,
            "templates": [] if postmortem else selectors.postmortem_template_list(),
        },
    )


def metrics(request):
    return render(
        request,
        "incidents/incident_metrics.html",
        {"by_class": selectors.incident_counts_by_failure_class()},
    )
