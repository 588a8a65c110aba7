from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from agents import change_log, fleet, hooks, selectors, services
from agents.models import Agent, AuditEntry, ChangeKind, ChangeSource
from core.actors import Actor
from core.errors import Conflict
from core.forms import error_sentence
from core.http import HtmxHttpRequest
from core.roles import ADMIN, RESPONDER, role_required


class BudgetCapsForm(forms.Form):
    session_cost_cap = forms.DecimalField(required=False, min_value=0, max_digits=12, decimal_places=4)
    daily_cost_cap = forms.DecimalField(required=False, min_value=0, max_digits=12, decimal_places=4)
    session_token_cap = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    session_step_cap = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1)


def agent_list(request: HtmxHttpRequest) -> HttpResponse:
    return render(
        request,
        "agents/agent_list.html",
        {
            "agents": selectors.agent_list(),
            "state_counts": selectors.agent_state_counts(),
            "fleet": selectors.fleet_gate_peek(),
            "fleet_stop_confirmation": FLEET_STOP_CONFIRMATION,
        },
    )


def agent_detail(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    try:
        agent = selectors.agent_get(slug=slug)
    except Agent.DoesNotExist:
        raise Http404("No agent with this slug.") from None
    # Recent traces load from the traces app by URL (agents sits below traces
    # and does not import it).
    return render(
        request,
        "agents/agent_detail.html",
        {
            "agent": agent,
            "tools": selectors.agent_tool_list(agent=agent),
            "audit_entries": selectors.audit_list(agent=agent, limit=50),
            "fleet": selectors.fleet_gate_peek(),
            "pending_reason": selectors.reasons_pending(agents=[agent]).get(agent.pk),
            "spend_p50": hooks.session_spend_p50(agent),
            "changes": selectors.change_list(agent=agent),
            "change_kinds": ChangeKind.choices,
            **selectors.containment_panel(agent),
            "spend_today": hooks.spend_today(agent),
        },
    )


# --- gate actions ---------------------------------------------------------------------------------
# Each is a POST that validates and calls the same service as the API. Without
# JavaScript it redirects back with a message; with htmx it answers 204 and
# triggers ``fb:gate-changed`` so the fleet cards refresh in place.


def _back(request: HtmxHttpRequest, agent: Agent | None = None) -> str:
    nxt = request.POST.get("next") or request.GET.get("next")
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}):
        return nxt
    return reverse("agents:agent-detail", args=[agent.slug]) if agent else reverse("agents:agent-list")


def _done(request: HtmxHttpRequest, agent: Agent | None, message: str, *, changed: bool = True) -> HttpResponse:
    if request.htmx:
        response = HttpResponse(status=204)
        trigger_client_event(response, "fb:gate-changed", {"agent": agent.slug if agent else None})
        trigger_client_event(response, "fb:notice", {"message": message})
        return response
    (messages.success if changed else messages.info)(request, message)
    return redirect(_back(request, agent))


def _failed(request: HtmxHttpRequest, agent: Agent | None, exc: Exception) -> HttpResponse:
    if isinstance(exc, ValidationError):
        text = error_sentence(exc)
        status = 409 if isinstance(exc, Conflict) else 400
    else:
        text, status = str(exc) or "not allowed", 403
    if request.htmx:
        response = HttpResponse(status=204)
        trigger_client_event(response, "fb:error", {"message": text})
        return response
    if status == 403:
        raise PermissionDenied(text)
    messages.error(request, text)
    return redirect(_back(request, agent))


def _agent(slug: str) -> Agent:
    try:
        return selectors.agent_get(slug=slug)
    except Agent.DoesNotExist:
        raise Http404("No agent with this slug.") from None


def _incident(request: HtmxHttpRequest) -> int | None:
    """The incident a kill, pause or resume belongs to, when the form names one (incident, blast-radius
    and close pages)."""
    value = request.POST.get("incident", "")
    return int(value) if value.isdigit() and 0 < int(value) < 2**31 else None


def _run(
    request: HtmxHttpRequest, target: Agent | None, fn: Callable[..., AuditEntry | None], message: str, **kwargs: Any
) -> HttpResponse:
    """Call the service ``fn`` as the user with the posted reason; answer as _done/_failed."""
    try:
        entry = fn(actor=Actor.from_request(request), reason=request.POST.get("reason", ""), **kwargs)
    except (ValidationError, PermissionDenied) as exc:
        return _failed(request, target, exc)
    if entry is None:
        return _done(request, target, "Nothing to change: the gate already says so.", changed=False)
    return _done(request, target, message)


@require_POST
@role_required(RESPONDER)
def agent_kill(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    agent = _agent(slug)
    return _run(
        request, agent, services.agent_kill, f"{agent.slug} killed.", agent=agent, incident_number=_incident(request)
    )


@require_POST
@role_required(RESPONDER)
def agent_pause(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    agent = _agent(slug)
    return _run(
        request, agent, services.agent_pause, f"{agent.slug} paused.", agent=agent, incident_number=_incident(request)
    )


@require_POST
@role_required(RESPONDER)
def agent_resume(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    agent = _agent(slug)
    message = " ".join(filter(None, [f"{agent.slug} resumed.", selectors.daily_cap_warning(agent=agent)]))
    return _run(request, agent, services.agent_resume, message, agent=agent, incident_number=_incident(request))


@require_POST
@role_required(RESPONDER)
def tool_toggle(request: HtmxHttpRequest, slug: str, tool: str, action: str) -> HttpResponse:
    if action not in ("disable", "enable"):
        raise Http404("Tools are disabled or enabled.")
    agent = _agent(slug)
    fn = services.agent_tool_disable if action == "disable" else services.agent_tool_enable
    return _run(request, agent, fn, f"{tool} {action}d for {agent.slug}.", agent=agent, tool=tool)


@require_POST
@role_required(RESPONDER)
def budget_freeze(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    agent = _agent(slug)
    return _run(request, agent, services.agent_budget_freeze, f"Budget of {agent.slug} frozen.", agent=agent)


@require_POST
@role_required(RESPONDER)
def budget_unfreeze(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    agent = _agent(slug)
    return _run(request, agent, services.agent_budget_unfreeze, f"Budget of {agent.slug} unfrozen.", agent=agent)


@require_POST
@role_required(RESPONDER)
def budget_caps(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    agent = _agent(slug)
    form = BudgetCapsForm(request.POST)
    if not form.is_valid():
        errors = {field: [e["message"] for e in errs] for field, errs in form.errors.get_json_data().items()}
        return _failed(request, agent, ValidationError(errors))
    return _run(
        request,
        agent,
        services.agent_budget_caps_set,
        f"Budget caps of {agent.slug} saved.",
        agent=agent,
        **form.cleaned_data,
    )


@require_POST
@role_required(RESPONDER)
def audit_reason(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    try:
        entry = selectors.audit_entry_get(pk=pk)
    except AuditEntry.DoesNotExist:
        raise Http404("No such audit entry.") from None
    try:
        services.audit_reason_add(entry=entry, actor=Actor.from_request(request), reason=request.POST.get("reason", ""))
    except (ValidationError, PermissionDenied) as exc:
        return _failed(request, entry.agent, exc)
    return _done(request, entry.agent, "Reason added to the audit history.")


FLEET_STOP_CONFIRMATION = "STOP ALL AGENTS"


@require_POST
@role_required(RESPONDER)
def fleet_stop(request: HtmxHttpRequest) -> HttpResponse:
    if request.POST.get("confirm", "").strip() != FLEET_STOP_CONFIRMATION:
        return _failed(request, None, ValidationError(f"type {FLEET_STOP_CONFIRMATION} to confirm the fleet stop"))
    return _run(request, None, fleet.fleet_stop, "Fleet stopped: every agent is refused at the gate.")


@require_POST
@role_required(ADMIN)
def fleet_resume(request: HtmxHttpRequest) -> HttpResponse:
    return _run(request, None, fleet.fleet_resume, "Fleet stop lifted.")


@require_POST
@role_required(RESPONDER)
def change_freeze(request: HtmxHttpRequest) -> HttpResponse:
    on = request.POST.get("on") == "1"
    return _run(request, None, fleet.change_freeze, "Change freeze on." if on else "Change freeze off.", on=on)


@require_POST
@role_required(RESPONDER)
def change_record(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Record a change by hand (source ``ui``): refused during the change freeze, like the API."""
    agent = _agent(slug)
    try:
        event = change_log.agent_change_record(
            agent=agent,
            actor=Actor.from_request(request),
            kind=request.POST.get("kind", ""),
            version=request.POST.get("version", ""),
            description=request.POST.get("description", ""),
            source=ChangeSource.UI,
        )
    except (ValidationError, PermissionDenied) as exc:
        return _failed(request, agent, exc)
    return _done(request, agent, f"{event.get_kind_display()} change {event.version} recorded.")
