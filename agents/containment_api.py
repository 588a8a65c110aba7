"""The API of issue 15's gate changes: degrade (the fallback ladder), rollback and unpin, block and
unblock. Responders only; an agent's key is refused (403) like resume. Each view validates, then calls
the service in ``agents/containment.py`` that the agent page calls too, and answers the new gate."""

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import containment, hooks, selectors
from agents.api import GateSerializer
from agents.changes import REASON_MAX, GateConflict
from agents.gate import BLOCK_KINDS, gate_document
from agents.models import Agent
from agents.permissions import IsResponder
from agents.signing import document_sign
from core.actors import Actor
from core.api import ERRORS, INT_MAX, error, service_error


class _IncidentField(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=REASON_MAX, default="")
    incident = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=INT_MAX, help_text="number of the incident"
    )


class DegradeSerializer(_IncidentField):
    level = serializers.CharField(max_length=40, help_text="a level of the agent's ladder, e.g. 'retrieval'")


class RollbackSerializer(_IncidentField):
    reason = serializers.CharField(max_length=REASON_MAX)


class BlockSerializer(_IncidentField):
    session = serializers.CharField(required=False, max_length=containment.BLOCK_ID_MAX)
    user = serializers.CharField(required=False, max_length=containment.BLOCK_ID_MAX)
    tenant = serializers.CharField(required=False, max_length=containment.BLOCK_ID_MAX)
    ttl_seconds = serializers.IntegerField(
        required=False, min_value=1, max_value=containment.BLOCK_TTL_MAX, help_text="required to block"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [kind for kind in BLOCK_KINDS if attrs.get(kind)]
        if len(given) != 1:
            raise serializers.ValidationError({"session": "give exactly one of session, user or tenant"})
        attrs["kind"], attrs["value"] = given[0], attrs[given[0]]
        return attrs


def _answer(agent: Agent) -> Response:
    agent.refresh_from_db()
    return Response(document_sign(gate_document(agent, selectors.fleet_gate_peek())))


def _action(
    name: str, *, summary: str, serializer: type[serializers.Serializer], call: Callable[..., object]
) -> type[APIView]:
    class ContainmentApi(APIView):
        permission_classes = [IsResponder]
        throttle_classes: list[Any] = []  # containment is never refused for speed

        @extend_schema(
            operation_id=f"gate_{name}",
            summary=summary,
            request=serializer,
            responses={200: GateSerializer, **ERRORS},
            tags=["gate"],
        )
        def post(self, request: Request, slug: str) -> Response:
            agent = Agent.objects.filter(slug=slug).first()
            if agent is None:
                return error(f"no agent {slug!r}", 404)
            data = serializer(data=request.data)
            if not data.is_valid():
                return error("invalid input", 400, data.errors)
            values = dict(data.validated_data)
            try:
                call(
                    agent=agent,
                    actor=Actor.from_request(request),
                    reason=values.pop("reason", ""),
                    incident_number=values.pop("incident", None),
                    values=values,
                )
            except (ValidationError, PermissionDenied) as exc:
                return service_error(exc)
            return _answer(agent)

    ContainmentApi.__name__ = f"Gate{name.title().replace('_', '')}Api"
    return ContainmentApi


def _degrade(*, values: dict[str, Any], **kwargs: Any) -> None:
    containment.agent_degrade(level=values["level"], **kwargs)


def _rollback(*, agent: Agent, values: dict[str, Any], **kwargs: Any) -> None:
    good = hooks.last_known_good(agent)
    if good is None:
        raise GateConflict("no last known good: no trace with prompt and model versions in a window without alerts")
    containment.agent_rollback(
        agent=agent, prompt_version=good["prompt_version"], model_version=good["model_version"], **kwargs
    )


def _unpin(*, values: dict[str, Any], **kwargs: Any) -> None:
    containment.agent_unpin(**kwargs)


def _block(*, values: dict[str, Any], **kwargs: Any) -> None:
    if values.get("ttl_seconds") is None:
        raise ValidationError({"ttl_seconds": "required: how long the block holds, in seconds"})
    containment.agent_block(kind=values["kind"], value=values["value"], ttl_seconds=values["ttl_seconds"], **kwargs)


def _unblock(*, values: dict[str, Any], **kwargs: Any) -> None:
    containment.agent_unblock(kind=values["kind"], value=values["value"], **kwargs)


DegradeApi = _action(
    "degrade", summary="Move an agent to a level of its fallback ladder", serializer=DegradeSerializer, call=_degrade
)
RollbackApi = _action(
    "rollback",
    summary="Pin an agent to its last known good prompt and model versions (reason required)",
    serializer=RollbackSerializer,
    call=_rollback,
)
UnpinApi = _action("unpin", summary="Lift the rollback pin", serializer=_IncidentField, call=_unpin)
BlockApi = _action(
    "block", summary="Block one session, user or tenant for ttl_seconds", serializer=BlockSerializer, call=_block
)
UnblockApi = _action(
    "unblock", summary="Lift the block on a session, user or tenant", serializer=BlockSerializer, call=_unblock
)
