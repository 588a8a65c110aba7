import contextlib

from django.contrib.auth.models import User
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from agents.keys.selectors import api_key_resolve
from agents.models import Agent, ApiKey
from core.actors import Actor


class AgentPrincipal:
    """The request.user of an agent key: authenticated, never staff, tied to one agent."""

    is_authenticated = True
    is_anonymous = False
    is_superuser = False
    is_staff = False
    pk = None

    def __init__(self, api_key: ApiKey) -> None:
        assert api_key.agent is not None, "an agent principal needs an agent's key"
        self.api_key = api_key
        self.agent: Agent = api_key.agent
        self.username = f"agent:{self.agent.slug}"

    def __str__(self) -> str:
        return self.username

    def as_actor(self) -> Actor:
        return Actor.agent_key(self.agent.slug)

    @property
    def groups(self) -> None:  # pragma: no cover - roles never apply to agents
        raise AttributeError("agent keys have no groups")


class IntegrationPrincipal:
    """The request.user of an integration key: authenticated, no role, no agent; it may only post
    inbound alerts (the ``inbound`` scope), which ``agents.permissions.CanPostInbound`` checks."""

    is_authenticated = True
    is_anonymous = False
    is_superuser = False
    is_staff = False
    pk = None
    _firebreak_role = None

    def __init__(self, api_key: ApiKey) -> None:
        assert api_key.integration, "an integration principal needs an integration's key"
        self.api_key = api_key
        self.integration: str = api_key.integration
        self.username = f"integration:{self.integration}"

    def __str__(self) -> str:
        return self.username

    def get_username(self) -> str:
        return self.username

    def as_actor(self) -> Actor:
        # Not Actor.system: that is Firebreak itself, which roles do not limit. This actor can do nothing
        # a role guards; the inbound service acts as the source (Actor.system("<source>")) on its own.
        return Actor(label=self.username)

    @property
    def groups(self) -> None:  # pragma: no cover - roles never apply to integrations
        raise AttributeError("integration keys have no groups")


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer fbk_…``. Agent keys become an AgentPrincipal, user keys the user."""

    keyword = "bearer"

    def authenticate(
        self, request: Request
    ) -> tuple[AgentPrincipal | IntegrationPrincipal | User | None, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <key>'")
        key = api_key_resolve(raw=parts[1])
        if key is None:
            raise exceptions.AuthenticationFailed("unknown or revoked API key")
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            key.last_used_at = now
            # PostgreSQL down: the key still works (its spans spool); its last use is noted next time.
            with contextlib.suppress(OperationalError, InterfaceError):
                type(key).objects.filter(pk=key.pk).update(last_used_at=now)
        if key.agent_id:
            return AgentPrincipal(key), key
        if key.integration:
            return IntegrationPrincipal(key), key
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="firebreak"'
