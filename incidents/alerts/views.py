"""Alert pages: the alert list (acknowledge, resolve) and the detector settings."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from agents.models import Agent
from core.actors import Actor
from core.errors import error_messages
from core.replica import replica_reads
from core.roles import ADMIN, RESPONDER, has_role, role_required
from incidents.alerts import selectors, services
from incidents.integrations.pagerduty.services import paging_enabled
from incidents.models import Alert, DetectorSetting
from incidents.notifications.selectors import deliveries_attach


def _alert_or_404(pk: int) -> Alert:
    try:
        return selectors.alert_get(pk=pk)
    except Alert.DoesNotExist:
        raise Http404("No alert with this id.") from None


@replica_reads
def alert_list(request):
    status = request.GET.get("status", "")
    detector = request.GET.get("detector", "")
    agent = request.GET.get("agent", "")
    status = status if status in Alert.Status.values else ""
    alerts = deliveries_attach(selectors.alert_list(status=status, detector=detector, agent=agent))
    return render(
        request,
        "incidents/alert_list.html",
        {
            "alerts": alerts,
            "statuses": Alert.Status.choices,
            "detectors": selectors.alert_detector_names(),
            "agents": selectors.agent_choices(),
            "status": status,
            "detector": detector,
            "agent": agent,
            "list_limit": selectors.ALERT_LIST_LIMIT,
        },
    )


def _alert_action(request, pk: int, action):
    alert = _alert_or_404(pk)
    error = ""
    try:
        action(alert=alert, actor=Actor.from_request(request))
    except ValidationError as exc:
        error = " ".join(error_messages(exc))
    if request.htmx:
        alert = deliveries_attach([_alert_or_404(pk)])[0]
        return render(
            request,
            "incidents/alert_list.html#alert-row",
            {"alert": alert, "row_error": error},
            status=400 if error else 200,
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Alert #{alert.pk} {alert.get_status_display().lower()}.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = ""
    return redirect(target or "incidents:alert-list")


@require_POST
@role_required(RESPONDER)
def alert_acknowledge(request, pk: int):
    return _alert_action(request, pk, services.alert_acknowledge)


@require_POST
@role_required(RESPONDER)
def alert_resolve(request, pk: int):
    return _alert_action(request, pk, services.alert_resolve)


def _settings_context(request, **extra) -> dict:
    return {
        "detectors": selectors.detector_settings_overview(),
        "agents": selectors.agent_choices(),
        "rules": DetectorSetting.Rule.choices,
        "can_edit": has_role(request.user, ADMIN),
        "paging_enabled": paging_enabled(),
        **extra,
    }


def detector_settings(request):
    if request.method == "POST":
        return _detector_settings_post(request)
    return render(request, "incidents/detector_settings.html", _settings_context(request))


@role_required(ADMIN)
def _detector_settings_post(request):
    data = request.POST
    detector = data.get("detector", "")
    agent_slug = data.get("agent", "").strip()
    thresholds = {key[2:]: value for key, value in data.items() if key.startswith("t_") and value.strip() != ""}
    errors: list[str] = []
    agent = None
    if agent_slug:
        agent = Agent.objects.filter(slug=agent_slug).first()
        if agent is None:
            errors.append(f"Unknown agent {agent_slug!r}.")
    if not errors:
        try:
            services.detector_setting_save(
                detector=detector,
                agent=agent,
                enabled=data.get("enabled") in ("on", "1", "true"),
                thresholds=thresholds,
                rule=data.get("rule", ""),
                actor=Actor.from_request(request),
            )
        except ValidationError as exc:
            errors.extend(error_messages(exc))
    if errors:
        context = _settings_context(request, errors=errors, error_detector=detector, posted=data)
        return render(request, "incidents/detector_settings.html", context, status=400)
    messages.success(request, f"Settings of {detector} saved for {agent.slug if agent else 'all agents'}.")
    return redirect("incidents:detector-settings")


@require_GET
def alert_new(request):
    """The new-alert poll (``templates/partials/alert_toast.html``): toasts for alerts raised after the
    ``since`` id the page sends, 204 when there are none. ``X-Alert-Since`` carries the next ``since``."""
    raw = request.GET.get("since", "").strip()
    since = int(raw) if raw.isdigit() and len(raw) <= 18 else None
    alerts, next_since = selectors.alert_new_since(since=since)
    if not alerts:
        response = HttpResponse(status=204)
    else:
        response = render(request, "partials/alert_toast.html#toasts", {"new_alerts": alerts})
    response["X-Alert-Since"] = str(next_since)
    response["Cache-Control"] = "no-store"
    return response
