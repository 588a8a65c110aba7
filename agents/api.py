"""The gate API. Each view validates, then calls the same service as the HTML view."""

from collections.abc import Callable, Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import change_log, fleet, selectors, services
from agents.change_log import DESCRIPTION_MAX, VERSION_MAX, change_trace_url
from agents.changes import REASON_MAX
from agents.gate import fleet_document, gate_document, gate_read
from agents.keys.authentication import AgentPrincipal
from agents.models import Agent, ChangeEvent, ChangeKind, ChangeSource, Environment
from agents.permissions import IsAdmin, IsResponder, IsViewer, is_agent_key, key_scopes
from agents.signing import document_etag, document_sign
from core.actors import Actor
from core.api import ERRORS, INT_MAX, error, service_error
from core.roles import VIEWER, has_role


class CanReadGate(BasePermission):
    """An agent key with the ``gate`` scope (for its own agent, checked in the view), or any person."""

    message = "this key cannot read gates (it needs the 'gate' scope)"

    def has_permission(self, request: Request, view: APIView) -> bool:
        if is_agent_key(request):
            return "gate" in key_scopes(request)
        if getattr(request, "auth", None) is not None and "api" not in key_scopes(request):
            return False
        return has_role(request.user, VIEWER)


def _agent_or_404(slug: str) -> Agent | None:
    return Agent.objects.filter(slug=slug).first()


# --- serializers ---------------------------------------------------------------------------------


class BudgetSerializer(serializers.Serializer):
    frozen = serializers.BooleanField()
    frozen_at = serializers.DateTimeField(allow_null=True, help_text="When the freeze began; runs started before drain")
    session_cost_cap = serializers.FloatField(allow_null=True)
    daily_cost_cap = serializers.FloatField(allow_null=True)
    session_token_cap = serializers.IntegerField(allow_null=True)
    session_step_cap = serializers.IntegerField(allow_null=True)


class PinnedSerializer(serializers.Serializer):
    prompt_version = serializers.CharField()
    model_version = serializers.CharField()


class BlockSerializer(serializers.Serializer):
    id = serializers.CharField()
    expires_at = serializers.DateTimeField()


class BlockedSerializer(serializers.Serializer):
    sessions = BlockSerializer(many=True)
    users = BlockSerializer(many=True)
    tenants = BlockSerializer(many=True)


class GateSerializer(serializers.Serializer):
    agent = serializers.CharField()
    state = serializers.ChoiceField(["active", "paused", "killed"])
    reason = serializers.CharField(allow_blank=True)
    disabled_tools = serializers.ListField(child=serializers.CharField())
    budget = BudgetSerializer()
    allowed_tools = serializers.ListField(child=serializers.CharField(), help_text="empty: every tool")
    version = serializers.IntegerField(help_text="grows with every change within an epoch")
    epoch = serializers.IntegerField(help_text="moves forward after a database restore; order by (epoch, version)")
    changed_by = serializers.CharField(allow_blank=True)
    changed_at = serializers.DateTimeField(allow_null=True)
    fleet_stopped = serializers.BooleanField()
    change_freeze = serializers.BooleanField()
    fallback_message = serializers.CharField(allow_blank=True)
    level = serializers.CharField(help_text="the level of the fallback ladder the agent runs at")
    levels = serializers.ListField(child=serializers.CharField(), help_text="the ladder, most capable first")
    pinned = PinnedSerializer(allow_null=True, help_text="versions to run after a rollback; null: not pinned")
    blocked = BlockedSerializer(help_text="blocked sessions, users and tenants, each until its expires_at")
    issued_at = serializers.IntegerField(help_text="when the server signed it, milliseconds since 1970 (UTC)")
    signature = serializers.CharField(
        help_text="Ed25519 by the server's gate key over the canonical JSON of every other field (base64)"
    )


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=REASON_MAX, default="")
    incident = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=INT_MAX,
        help_text="number of the incident this action belongs to",
    )


class RequiredReasonSerializer(ReasonSerializer):
    reason = serializers.CharField(max_length=REASON_MAX)


class FleetSerializer(serializers.Serializer):
    stopped = serializers.BooleanField()
    stopped_reason = serializers.CharField(allow_blank=True)
    change_freeze = serializers.BooleanField()
    change_freeze_reason = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField()


class AgentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Agent
        fields = [
            "slug",
            "name",
            "description",
            "owner",
            "environment",
            "allowed_tools",
            "high_risk_tools",
            "model_version",
            "prompt_version",
            "fallback_message",
            "state",
            "state_reason",
            "disabled_tools",
            "session_cost_cap",
            "daily_cost_cap",
            "session_token_cap",
            "session_step_cap",
            "budget_frozen",
            "budget_frozen_at",
            "gate_version",
            "created_at",
        ]
        read_only_fields = fields


class AgentRegisterSerializer(serializers.Serializer):
    slug = serializers.RegexField(r"^[a-z0-9][a-z0-9-]{0,62}$", help_text="lowercase letters, digits, dashes")
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    owner = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    environment = serializers.ChoiceField(Environment.choices, default=Environment.PRODUCTION)
    allowed_tools = serializers.ListField(child=serializers.CharField(max_length=128), default=list)
    high_risk_tools = serializers.ListField(child=serializers.CharField(max_length=128), default=list)
    model_version = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    prompt_version = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    session_cost_cap = serializers.DecimalField(12, 4, required=False, allow_null=True, min_value=0, default=None)
    daily_cost_cap = serializers.DecimalField(12, 4, required=False, allow_null=True, min_value=0, default=None)
    session_token_cap = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=INT_MAX, default=None
    )
    session_step_cap = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=INT_MAX, default=None
    )
    fallback_message = serializers.CharField(required=False, allow_blank=True, default=None)


# --- views ---------------------------------------------------------------------------------------


class AgentListApi(APIView):
    def get_permissions(self) -> Sequence[BasePermission]:
        return [IsAdmin()] if self.request.method == "POST" else [IsViewer()]

    @extend_schema(
        operation_id="agents_list", summary="List agents", responses={200: AgentSerializer(many=True)}, tags=["agents"]
    )
    def get(self, request: Request) -> Response:
        return Response(AgentSerializer(selectors.agent_list(), many=True).data)

    @extend_schema(
        operation_id="agents_register",
        summary="Register an agent (admin)",
        request=AgentRegisterSerializer,
        responses={201: AgentSerializer, **ERRORS},
        tags=["agents"],
    )
    def post(self, request: Request) -> Response:
        data = AgentRegisterSerializer(data=request.data)
        if not data.is_valid():
            return error("invalid input", 400, data.errors)
        try:
            agent = services.agent_register(actor=Actor.from_request(request), **data.validated_data)
        except ValidationError as exc:
            return service_error(exc)
        return Response(AgentSerializer(agent).data, status=201)


class GateApi(APIView):
    permission_classes = [CanReadGate]
    throttle_classes = []  # never throttled: a kill must always be heard

    @extend_schema(
        operation_id="gate_read",
        summary="Read an agent's gate",
        description="What the SDK's HTTP transport reads (it listens on `/gate/stream` first). Signed by the "
        "server; the ETag covers the content only, so with a matching `If-None-Match` the answer is 304.",
        responses={200: GateSerializer, 304: OpenApiResponse(description="unchanged"), **ERRORS},
        tags=["gate"],
    )
    def get(self, request: Request, slug: str) -> Response:
        if isinstance(request.user, AgentPrincipal) and request.user.agent.slug != slug:
            return error("this key belongs to another agent", 403)
        doc = gate_read(slug)
        if doc is None:
            return error(f"no agent {slug!r}", 404)
        etag = document_etag(doc)
        headers = {"ETag": etag, "Cache-Control": "no-store"}
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers=headers)
        return Response(doc, headers=headers)


def _gate_action(
    name: str,
    *,
    summary: str,
    service: Callable[..., object],
    reason_required: bool = False,
    tool: bool = False,
    success: int = 200,
) -> type[APIView]:
    serializer = RequiredReasonSerializer if reason_required else ReasonSerializer

    class GateActionApi(APIView):
        permission_classes = [IsResponder]
        throttle_classes = []  # a responder's kill or pause is never refused for speed

        @extend_schema(
            operation_id=f"gate_{name}",
            summary=summary,
            request=serializer,
            responses={200: GateSerializer, **ERRORS},
            tags=["gate"],
        )
        def post(self, request: Request, slug: str, tool_name: str | None = None) -> Response:
            agent = _agent_or_404(slug)
            if agent is None:
                return error(f"no agent {slug!r}", 404)
            data = serializer(data=request.data)
            if not data.is_valid():
                return error("invalid input", 400, data.errors)
            kwargs: dict[str, Any] = {
                "agent": agent,
                "actor": Actor.from_request(request),
                "reason": data.validated_data["reason"],
                "incident_number": data.validated_data.get("incident"),
            }
            if tool:
                kwargs["tool"] = tool_name
            try:
                service(**kwargs)
            except (ValidationError, PermissionDenied) as exc:
                return service_error(exc)
            agent.refresh_from_db()
            return Response(document_sign(gate_document(agent, selectors.fleet_gate_peek())), status=success)

    GateActionApi.__name__ = f"Gate{name.title().replace('_', '')}Api"
    return GateActionApi


AgentKillApi = _gate_action("kill", summary="Kill an agent", service=services.agent_kill)
AgentPauseApi = _gate_action("pause", summary="Pause an agent", service=services.agent_pause)
AgentResumeApi = _gate_action(
    "resume", summary="Resume an agent (reason required)", service=services.agent_resume, reason_required=True
)
ToolDisableApi = _gate_action(
    "tool_disable", summary="Disable one tool of an agent", service=services.agent_tool_disable, tool=True
)
ToolEnableApi = _gate_action(
    "tool_enable", summary="Enable a disabled tool", service=services.agent_tool_enable, tool=True
)
BudgetFreezeApi = _gate_action(
    "budget_freeze", summary="Freeze the budget at the p50 session spend", service=services.agent_budget_freeze
)
BudgetUnfreezeApi = _gate_action(
    "budget_unfreeze",
    summary="Unfreeze the budget (reason required)",
    service=services.agent_budget_unfreeze,
    reason_required=True,
)


class FleetApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(
        operation_id="fleet_read",
        summary="Fleet stop and change freeze (deploy pipelines read this)",
        responses={200: FleetSerializer},
        tags=["fleet"],
    )
    def get(self, request: Request) -> Response:
        return Response(fleet_document(selectors.fleet_gate_peek()))


def _fleet_action(
    name: str,
    *,
    summary: str,
    service: Callable[..., object],
    role_permission: type[BasePermission],
    extra: dict[str, Any] | None = None,
) -> type[APIView]:
    class FleetActionApi(APIView):
        permission_classes = [role_permission]
        throttle_classes = []  # a fleet-wide stop is never refused for speed

        @extend_schema(
            operation_id=f"fleet_{name}",
            summary=summary,
            request=RequiredReasonSerializer,
            responses={200: FleetSerializer, **ERRORS},
            tags=["fleet"],
        )
        def post(self, request: Request) -> Response:
            data = RequiredReasonSerializer(data=request.data)
            if not data.is_valid():
                return error("invalid input", 400, data.errors)
            try:
                with transaction.atomic():
                    service(actor=Actor.from_request(request), reason=data.validated_data["reason"], **(extra or {}))
            except (ValidationError, PermissionDenied) as exc:
                return service_error(exc)
            return Response(fleet_document(selectors.fleet_gate_peek()))

    FleetActionApi.__name__ = f"Fleet{name.title().replace('_', '')}Api"
    return FleetActionApi


FleetStopApi = _fleet_action(
    "stop", summary="Stop every agent (reason required)", service=fleet.fleet_stop, role_permission=IsResponder
)
FleetResumeApi = _fleet_action(
    "resume",
    summary="Lift the fleet stop (admin, reason required)",
    service=fleet.fleet_resume,
    role_permission=IsAdmin,
)
ChangeFreezeOnApi = _fleet_action(
    "change_freeze",
    summary="Turn the deploy lock on",
    service=fleet.change_freeze,
    role_permission=IsResponder,
    extra={"on": True},
)
ChangeFreezeOffApi = _fleet_action(
    "change_unfreeze",
    summary="Turn the deploy lock off",
    service=fleet.change_freeze,
    role_permission=IsResponder,
    extra={"on": False},
)


# --- what changed --------------------------------------------------------------------------------


class ChangeRecordSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(ChangeKind.choices)
    version = serializers.CharField(max_length=VERSION_MAX)
    description = serializers.CharField(required=False, allow_blank=True, max_length=DESCRIPTION_MAX, default="")


class ChangeEventSerializer(serializers.ModelSerializer):
    agent = serializers.CharField(source="agent.slug")
    actor = serializers.CharField(source="actor_label")
    first_trace_url = serializers.SerializerMethodField()

    class Meta:
        model = ChangeEvent
        fields = [
            "agent",
            "kind",
            "version",
            "description",
            "actor",
            "source",
            "during_freeze",
            "first_trace_id",
            "first_trace_url",
            "created_at",
        ]
        read_only_fields = fields

    def get_first_trace_url(self, event: ChangeEvent) -> str | None:
        return change_trace_url(event)


class ChangeRecordApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="agents_change_record",
        summary="Record a change (prompt, model, tools, config, deploy) from a pipeline",
        description="Refused with 409 while the fleet's change freeze is on (the answer names who set it, "
        "since when and why). Prompt and model versions are also recorded by ingest the first time a trace "
        "carries them.",
        request=ChangeRecordSerializer,
        responses={201: ChangeEventSerializer, **ERRORS},
        tags=["agents"],
    )
    def post(self, request: Request, slug: str) -> Response:
        agent = _agent_or_404(slug)
        if agent is None:
            return error(f"no agent {slug!r}", 404)
        data = ChangeRecordSerializer(data=request.data)
        if not data.is_valid():
            return error("invalid input", 400, data.errors)
        try:
            event = change_log.agent_change_record(
                agent=agent, actor=Actor.from_request(request), source=ChangeSource.API, **data.validated_data
            )
        except (ValidationError, PermissionDenied) as exc:
            return service_error(exc)
        return Response(ChangeEventSerializer(event).data, status=201)

    @extend_schema(
        operation_id="agents_change_list",
        summary="The agent's recent changes, newest first",
        responses={200: ChangeEventSerializer(many=True), **ERRORS},
        tags=["agents"],
    )
    def get(self, request: Request, slug: str) -> Response:
        agent = _agent_or_404(slug)
        if agent is None:
            return error(f"no agent {slug!r}", 404)
        return Response(ChangeEventSerializer(selectors.change_list(agent=agent), many=True).data)

    def get_permissions(self) -> Sequence[BasePermission]:
        return [IsViewer()] if self.request.method == "GET" else [IsResponder()]
