"""The API keys API: the same rules as the /keys/ page (agents/keys/views.py), the same services.

- viewer: lists keys (owners, scopes, lookups, dates: nothing secret; a key's value is never stored);
- responder: makes a key for themself and revokes their own keys;
- admin: makes keys for anyone and for agents, revokes any key.
The raw key is in the answer to the POST that made it, and nowhere else.
"""

from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.keys import selectors
from agents.keys.forms import AGENT_SCOPES
from agents.keys.redis_users import RedisUserError, redis_url_for
from agents.keys.services import api_key_create, api_key_revoke
from agents.models import Agent, ApiKey, ApiKeyScope
from agents.permissions import IsResponder, IsViewer
from agents.signing import public_key_text
from core.actors import Actor
from core.api import ERRORS, error, service_error
from core.roles import ADMIN, RESPONDER, has_role


def _may_revoke(user: object, key: ApiKey) -> bool:
    return has_role(user, ADMIN) or (has_role(user, RESPONDER) and key.user_id == getattr(user, "pk", None))


class ApiKeySerializer(serializers.Serializer):
    lookup = serializers.CharField(help_text="the key's public part: fbk_<lookup>_…")
    name = serializers.CharField(allow_blank=True)
    owner_kind = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    scopes = serializers.ListField(child=serializers.CharField())
    redis_access = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked_by = serializers.CharField(allow_blank=True)

    def get_owner_kind(self, key: ApiKey) -> str:
        return "agent" if key.agent_id else "person"

    def get_owner(self, key: ApiKey) -> str:
        return key.agent.slug if key.agent is not None else key.user.get_username() if key.user else ""


class ApiKeyCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(["person", "agent"], default="person")
    username = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=150, help_text="a person key's owner; default: you"
    )
    agent = serializers.SlugField(
        required=False, allow_blank=True, default="", max_length=100, help_text="an agent key's agent"
    )
    scopes = serializers.ListField(
        child=serializers.ChoiceField(AGENT_SCOPES),
        required=False,
        default=[ApiKeyScope.INGEST.value, ApiKeyScope.GATE.value],
        help_text="an agent key's scopes (a person's key always has 'api')",
    )
    redis = serializers.BooleanField(default=False, help_text="an agent key with its own read-only Redis user")
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200, help_text="a label")

    def validate(self, attrs: dict) -> dict:
        if attrs["kind"] == "agent" and not attrs["agent"]:
            raise serializers.ValidationError({"agent": ["An agent key names its agent."]})
        if attrs["kind"] == "agent" and not attrs["scopes"]:
            raise serializers.ValidationError({"scopes": ["Choose at least one scope."]})
        return attrs


class ApiKeyCreatedSerializer(serializers.Serializer):
    key = ApiKeySerializer()
    raw = serializers.CharField(help_text="the key itself: shown this once, never stored")
    env = serializers.CharField(
        help_text="FIREBREAK_API_KEY=… (and for agents FIREBREAK_GATE_PUBLIC_KEY, the Redis URL)"
    )


class ApiKeyRevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class ApiKeyListApi(APIView):
    def get_permissions(self) -> Sequence[BasePermission]:
        return [IsResponder()] if self.request.method == "POST" else [IsViewer()]

    @extend_schema(
        operation_id="keys_list",
        summary="List API keys, live ones first (no values: they are never stored)",
        responses={200: ApiKeySerializer(many=True)},
        tags=["keys"],
    )
    def get(self, request: Request) -> Response:
        return Response(ApiKeySerializer(selectors.api_key_list(), many=True).data)

    @extend_schema(
        operation_id="keys_create",
        summary="Make a key (responder: your own; admin: anyone's or an agent's); the value is returned once",
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer, **ERRORS},
        tags=["keys"],
    )
    def post(self, request: Request) -> Response:
        data = ApiKeyCreateSerializer(data=request.data)
        if not data.is_valid():
            return error("invalid input", 400, data.errors)
        values = data.validated_data
        actor = Actor.from_request(request)
        is_admin = has_role(request.user, ADMIN)
        try:
            if values["kind"] == "agent":
                if not is_admin:
                    raise PermissionDenied("Agent keys need the admin role.")
                agent = Agent.objects.filter(slug=values["agent"]).first()
                if agent is None:
                    return error("invalid input", 400, {"agent": [f"No agent {values['agent']!r}."]})
                key, raw = api_key_create(
                    agent=agent, scopes=values["scopes"], name=values["name"], redis=values["redis"], actor=actor
                )
            else:
                username = values["username"] or request.user.get_username()
                if username != request.user.get_username() and not is_admin:
                    raise PermissionDenied("A responder makes keys for themself only.")
                person = get_user_model().objects.filter(username=username).first()
                if person is None:
                    return error("invalid input", 400, {"username": [f"No user named {username!r}."]})
                key, raw = api_key_create(user=person, scopes=[ApiKeyScope.API.value], name=values["name"], actor=actor)
        except (ValidationError, PermissionDenied) as exc:
            return service_error(exc)
        except RedisUserError as exc:
            return error("invalid input", 400, {"redis": [str(exc)]})
        lines = [f"FIREBREAK_API_KEY={raw}"]
        if key.redis_access:
            lines.append(f"FIREBREAK_REDIS_URL={redis_url_for(key, raw)}")
        if key.agent is not None:
            lines.append(f"FIREBREAK_GATE_PUBLIC_KEY={public_key_text()}")
        created = {"key": key, "raw": raw, "env": "\n".join(lines)}
        return Response(ApiKeyCreatedSerializer(created).data, status=201, headers={"Cache-Control": "no-store"})


class ApiKeyRevokeApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="keys_revoke",
        summary="Revoke a key (responder: your own; admin: any); 409 when it is already revoked",
        request=ApiKeyRevokeSerializer,
        responses={200: ApiKeySerializer, **ERRORS, 404: OpenApiResponse(description="unknown key")},
        tags=["keys"],
    )
    def post(self, request: Request, lookup: str) -> Response:
        try:
            key = selectors.api_key_get(lookup=lookup[:12])
        except ApiKey.DoesNotExist:
            return error(f"no key with lookup {lookup[:12]!r}", 404)
        if not _may_revoke(request.user, key):
            return error("Only an admin revokes someone else's key.", 403)
        data = ApiKeyRevokeSerializer(data=request.data)
        if not data.is_valid():
            return error("invalid input", 400, data.errors)
        try:
            api_key_revoke(key=key, actor=Actor.from_request(request), reason=data.validated_data["reason"])
        except (ValidationError, PermissionDenied) as exc:
            return service_error(exc)
        return Response(ApiKeySerializer(selectors.api_key_get(lookup=key.lookup)).data)
