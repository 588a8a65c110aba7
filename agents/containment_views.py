"""The agent page's controls for issue 15's gate fields: the fallback ladder (step down, back up, any
level; admins edit the ladder), rollback and unpin, blocks and unblocks. Plain POST forms that work
without JavaScript; with htmx they answer 204 and refresh in place (``agents.views._done``). Each calls
the service in ``agents/containment.py`` that the API calls."""

import json

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.views.decorators.http import require_POST

from agents import containment, hooks
from agents.changes import GateConflict
from agents.views import _agent, _done, _failed, _incident, _run
from core.actors import Actor
from core.http import HtmxHttpRequest
from core.roles import ADMIN, RESPONDER, role_required


@require_POST
@role_required(RESPONDER)
def agent_degrade(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    agent = _agent(slug)
    level = request.POST.get("level", "")
    return _run(
        request,
        agent,
        containment.agent_degrade,
        f"{agent.slug} now runs at level {level}.",
        agent=agent,
        level=level,
        incident_number=_incident(request),
    )


@require_POST
@role_required(ADMIN)
def agent_levels(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    agent = _agent(slug)
    try:
        levels = json.loads(request.POST.get("fallback_levels", ""))
    except json.JSONDecodeError:
        return _failed(request, agent, ValidationError({"fallback_levels": "not JSON: a list of levels"}))
    return _run(
        request,
        agent,
        containment.agent_levels_set,
        f"Fallback ladder of {agent.slug} saved.",
        agent=agent,
        levels=levels,
    )


@require_POST
@role_required(RESPONDER)
def agent_rollback(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    agent = _agent(slug)
    good = hooks.last_known_good(agent)
    if good is None:
        return _failed(
            request, agent, GateConflict("no last known good: no trace with versions in a window without alerts")
        )
    return _run(
        request,
        agent,
        containment.agent_rollback,
        f"{agent.slug} pinned to prompt {good['prompt_version']}, model {good['model_version']}.",
        agent=agent,
        prompt_version=good["prompt_version"],
        model_version=good["model_version"],
        incident_number=_incident(request),
    )


@require_POST
@role_required(RESPONDER)
def agent_unpin(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    agent = _agent(slug)
    return _run(request, agent, containment.agent_unpin, f"{agent.slug} unpinned.", agent=agent)


def _ttl(request: HtmxHttpRequest) -> int:
    value = request.POST.get("ttl_seconds", "")
    if not value.isdigit():
        raise ValidationError({"ttl_seconds": "a whole number of seconds"})
    return int(value)


@require_POST
@role_required(RESPONDER)
def agent_block(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    agent = _agent(slug)
    kind, value = request.POST.get("kind", ""), request.POST.get("value", "")
    try:
        ttl = _ttl(request)
    except ValidationError as exc:
        return _failed(request, agent, exc)
    return _run(
        request,
        agent,
        containment.agent_block,
        f"{kind} {value} of {agent.slug} blocked.",
        agent=agent,
        kind=kind,
        value=value,
        ttl_seconds=ttl,
        incident_number=_incident(request),
    )


@require_POST
@role_required(RESPONDER)
def agent_unblock(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    agent = _agent(slug)
    kind, value = request.POST.get("kind", ""), request.POST.get("value", "")
    return _run(
        request, agent, containment.agent_unblock, f"{kind} {value} unblocked.", agent=agent, kind=kind, value=value
    )


@require_POST
@role_required(RESPONDER)
def sessions_block(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The blast radius page's "stop these runs": block every session posted, in one transaction."""
    agent = _agent(slug)
    sessions = [s for s in request.POST.getlist("session") if s.strip()]
    if not sessions:
        return _failed(request, agent, ValidationError({"session": "no running session to stop"}))
    try:
        ttl = _ttl(request)
        containment.agent_block_many(
            agent=agent,
            kind="session",
            values=sessions,
            ttl_seconds=ttl,
            actor=Actor.from_request(request),
            reason=request.POST.get("reason", ""),
            incident_number=_incident(request),
        )
    except (ValidationError, PermissionDenied) as exc:
        return _failed(request, agent, exc)
    return _done(request, agent, f"{len(sessions)} running session(s) of {agent.slug} blocked.")
