"""/keys/: the API keys of people and agents.

Who may do what (roles in core.roles):
- viewer: sees the list (owners, scopes, lookups, dates: nothing secret; the value is never stored);
- responder: makes and revokes keys of their own (a key acts as its person, so no more than they can);
- admin: makes keys for any person, agent or integration (a monitoring tool that posts alerts), revokes any key.
Agent keys are admins' only: they are an agent's credentials to the gate and to ingest.
The raw key is in the response to the POST that made it, and nowhere else (no session, no redirect).
A reload of that response sends the POST again: each form carries a one-time token, and the
session remembers which token made which key (its lookup, never its value), so a resend makes
nothing and names the key the first send made.
"""

import secrets

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from agents import selectors as agent_selectors
from agents.keys import selectors
from agents.keys.forms import AgentKeyForm, IntegrationKeyForm, PersonKeyForm, RevokeForm
from agents.keys.redis_users import RedisUserError, redis_url_for
from agents.keys.services import api_key_create, api_key_revoke
from agents.models import Agent, ApiKey, ApiKeyScope
from agents.signing import public_key_text
from core.actors import Actor
from core.errors import Conflict
from core.forms import form_errors_add
from core.http import HtmxHttpRequest
from core.roles import ADMIN, RESPONDER, has_role, role_required

SESSION_MADE = "firebreak_keys_made"  # form token -> lookup of the key that form made
MADE_REMEMBERED = 20


def _may_revoke(user: object, key: ApiKey) -> bool:
    return has_role(user, ADMIN) or (has_role(user, RESPONDER) and key.user_id == getattr(user, "pk", None))


def _page(
    request: HtmxHttpRequest,
    *,
    agent_form: AgentKeyForm | None = None,
    person_form: PersonKeyForm | None = None,
    integration_form: IntegrationKeyForm | None = None,
    created: dict[str, object] | None = None,
    status: int = 200,
) -> HttpResponse:
    is_admin = has_role(request.user, ADMIN)
    keys = selectors.api_key_list()
    for key in keys:
        key.may_revoke = _may_revoke(request.user, key)  # type: ignore[attr-defined]
    response = render(
        request,
        "agents/apikey_list.html",
        {
            "keys": keys,
            "agents": agent_selectors.agent_list() if is_admin else [],
            "agent_form": agent_form or AgentKeyForm(),
            "person_form": person_form or PersonKeyForm(),
            "integration_form": integration_form or IntegrationKeyForm(),
            "revoke_form": RevokeForm(),
            "may_create": has_role(request.user, RESPONDER),
            "created": created,
            "form_token": secrets.token_urlsafe(16),
        },
        status=status,
    )
    return response


@never_cache
def key_list(request: HtmxHttpRequest) -> HttpResponse:
    return _page(request)


@never_cache
@require_POST
@role_required(RESPONDER)
def key_create(request: HtmxHttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    token = request.POST.get("form_token", "")[:64]
    made: dict[str, str] = request.session.get(SESSION_MADE, {})
    if token and token in made:
        messages.warning(
            request,
            f"This form was already sent: key {ApiKey.PREFIX}{made[token]}… was made then and shown once. "
            "Nothing new was made; revoke that key below if its value was not copied.",
        )
        return _page(request, status=409)
    if request.POST.get("kind") == "agent":
        if not has_role(request.user, ADMIN):
            raise PermissionDenied("Agent keys need the admin role.")
        agent_form = AgentKeyForm(request.POST)
        if not agent_form.is_valid():
            return _page(request, agent_form=agent_form, status=400)
        agent = Agent.objects.filter(slug=agent_form.cleaned_data["agent"]).first()
        if agent is None:
            agent_form.add_error("agent", "No agent with this slug.")
            return _page(request, agent_form=agent_form, status=400)
        try:
            key, raw = api_key_create(
                agent=agent,
                scopes=agent_form.cleaned_data["scopes"],
                name=agent_form.cleaned_data["name"],
                redis=agent_form.cleaned_data["redis"],
                actor=actor,
            )
        except ValidationError as exc:
            form_errors_add(agent_form, exc)
            return _page(request, agent_form=agent_form, status=400)
        except RedisUserError as exc:
            agent_form.add_error("redis", str(exc))
            return _page(request, agent_form=agent_form, status=400)
    elif request.POST.get("kind") == "integration":
        if not has_role(request.user, ADMIN):
            raise PermissionDenied("Integration keys need the admin role.")
        integration_form = IntegrationKeyForm(request.POST)
        if not integration_form.is_valid():
            return _page(request, integration_form=integration_form, status=400)
        try:
            key, raw = api_key_create(
                integration=integration_form.cleaned_data["integration"],
                scopes=[ApiKeyScope.INBOUND.value],
                name=integration_form.cleaned_data["name"],
                actor=actor,
            )
        except ValidationError as exc:
            form_errors_add(integration_form, exc)
            return _page(request, integration_form=integration_form, status=400)
    else:
        person_form = PersonKeyForm(request.POST)
        if not person_form.is_valid():
            return _page(request, person_form=person_form, status=400)
        username = person_form.cleaned_data["username"] or request.user.get_username()
        if username != request.user.get_username() and not has_role(request.user, ADMIN):
            raise PermissionDenied("A responder makes keys for themself only.")
        person = get_user_model().objects.filter(username=username).first()
        if person is None:
            person_form.add_error("username", "No user with this name.")
            return _page(request, person_form=person_form, status=400)
        key, raw = api_key_create(
            user=person, scopes=[ApiKeyScope.API.value], name=person_form.cleaned_data["name"], actor=actor
        )
    if token:
        made[token] = key.lookup
        request.session[SESSION_MADE] = dict(list(made.items())[-MADE_REMEMBERED:])
    lines = [f"Authorization: Bearer {raw}" if key.integration else f"FIREBREAK_API_KEY={raw}"]
    if key.redis_access:
        lines.append(f"FIREBREAK_REDIS_URL={redis_url_for(key, raw)}")
    if key.agent is not None:
        lines.append(f"FIREBREAK_GATE_PUBLIC_KEY={public_key_text()}")
    return _page(request, created={"key": key, "raw": raw, "env": "\n".join(lines)}, status=201)


@require_POST
@role_required(RESPONDER)
def key_revoke(request: HtmxHttpRequest, lookup: str) -> HttpResponse:
    try:
        key = selectors.api_key_get(lookup=lookup)
    except ApiKey.DoesNotExist:
        raise Http404("No key with this lookup.") from None
    if not _may_revoke(request.user, key):
        raise PermissionDenied("Only an admin revokes someone else's key.")
    form = RevokeForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Key {ApiKey.PREFIX}{key.lookup}… not revoked: say why (up to 2,000 characters).")
        return _page(request, status=400)
    try:
        api_key_revoke(key=key, actor=Actor.from_request(request), reason=form.cleaned_data["reason"])
    except Conflict as exc:
        messages.info(request, str(exc))
        return redirect("keys:key-list")
    messages.success(request, f"Key {ApiKey.PREFIX}{key.lookup}… revoked.")
    return redirect("keys:key-list")
