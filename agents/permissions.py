"""DRF permissions shared by every API: agent keys by scope, people by role."""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from agents.keys.authentication import AgentPrincipal, IntegrationPrincipal
from core.roles import ADMIN, RESPONDER, VIEWER, has_role


def is_agent_key(request: Request) -> bool:
    return isinstance(request.user, AgentPrincipal)


def key_scopes(request: Request) -> set[str]:
    key = getattr(request, "auth", None)
    return set(getattr(key, "scopes", ()) or ())


class AgentScopeOrRole(BasePermission):
    """An agent key holding ``scope``, or a person holding ``role`` (user keys need the ``api`` scope)."""

    scope = "ingest"
    role = RESPONDER

    def has_permission(self, request: Request, view: APIView) -> bool:
        if is_agent_key(request):
            return self.scope in key_scopes(request)
        if getattr(request, "auth", None) is not None and "api" not in key_scopes(request):
            return False
        return has_role(request.user, self.role)


class CanIngest(AgentScopeOrRole):
    scope = "ingest"
    message = "this key cannot send spans (it needs the 'ingest' scope, or a responder's key)"


def is_integration_key(request: Request) -> bool:
    return isinstance(request.user, IntegrationPrincipal)


class CanPostInbound(BasePermission):
    """The inbound alert endpoints: an integration key (scope ``inbound``), or a responder (a session, or
    their key with the ``api`` scope). Never an agent's key, never a viewer."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if is_agent_key(request):
            self.message = "an agent's key cannot post inbound alerts; use an integration key"
            return False
        if is_integration_key(request):
            self.message = "this integration key lacks the 'inbound' scope"
            return "inbound" in key_scopes(request)
        if getattr(request, "auth", None) is not None and "api" not in key_scopes(request):
            self.message = "this key lacks the 'api' scope"
            return False
        self.message = f"posting alerts needs an integration key or the {RESPONDER} role"
        return has_role(request.user, RESPONDER)


class IsPersonWithRole(BasePermission):
    """People only (never an agent key), with at least ``role``."""

    role = RESPONDER

    def has_permission(self, request: Request, view: APIView) -> bool:
        if is_agent_key(request):
            self.message = "an agent's key cannot do this"
            return False
        if getattr(request, "auth", None) is not None and "api" not in key_scopes(request):
            self.message = "this key lacks the 'api' scope"
            return False
        self.message = f"this needs the {self.role} role"
        return has_role(request.user, self.role)


class IsPerson(BasePermission):
    """Any logged-in person (a session, or their key with the ``api`` scope), never an agent key:
    the API schema and docs (``SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]``)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if is_agent_key(request):
            self.message = "an agent's key cannot read the API schema or docs; use a person's login or key"
            return False
        if getattr(request, "auth", None) is not None and "api" not in key_scopes(request):
            self.message = "this key lacks the 'api' scope"
            return False
        return bool(request.user and request.user.is_authenticated)


class IsViewer(IsPersonWithRole):
    role = VIEWER


class IsResponder(IsPersonWithRole):
    role = RESPONDER


class IsAdmin(IsPersonWithRole):
    role = ADMIN
