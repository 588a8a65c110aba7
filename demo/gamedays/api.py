"""The gamedays API: start a drill or a tabletop (responder), read its clock (viewer)."""

from collections.abc import Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import Agent
from agents.permissions import IsResponder, IsViewer
from core.actors import Actor
from core.api import ERROR, ERRORS, error, service_error
from demo.gamedays import selectors
from demo.gamedays.launch import gameday_launch
from demo.gamedays.models import Gameday, GamedayMode, Scenario


class GamedayStartSerializer(serializers.Serializer):
    scenario = serializers.ChoiceField(Scenario.choices)
    agent = serializers.SlugField(
        required=False,
        allow_blank=True,
        default="",
        max_length=63,
        help_text="agent slug; omit: a drill agent is registered",
    )
    mode = serializers.ChoiceField(GamedayMode.choices, required=False, default=GamedayMode.DRILL)


class GamedayTimingsSerializer(serializers.Serializer):
    detected = serializers.FloatField(allow_null=True, help_text="seconds from the start; null until it happens")
    contained = serializers.FloatField(allow_null=True)
    budget_frozen = serializers.FloatField(allow_null=True)
    step_flagged = serializers.FloatField(allow_null=True)
    blast_radius = serializers.FloatField(allow_null=True)
    eval_captured = serializers.FloatField(allow_null=True)


class GamedaySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    agent = serializers.CharField(source="agent.slug")
    scenario = serializers.CharField()
    mode = serializers.CharField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    timings = serializers.SerializerMethodField()
    injection_error = serializers.CharField()

    def get_timings(self, gameday: Gameday) -> dict[str, float | None]:
        return gameday.timings()


class GamedayListApi(APIView):
    """POST starts a gameday."""

    def get_permissions(self) -> Sequence[BasePermission]:
        return [IsResponder()]

    @extend_schema(
        operation_id="gamedays_start",
        summary="Start a gameday: a drill injects the scenario through a simulated agent; a tabletop runs the clock",
        request=GamedayStartSerializer,
        responses={201: GamedaySerializer, **ERRORS},
        tags=["gamedays"],
    )
    def post(self, request: Request) -> Response:
        body = GamedayStartSerializer(data=request.data)
        if not body.is_valid():
            return error("invalid input", 400, body.errors)
        data = body.validated_data
        agent = None
        if data["agent"]:
            agent = Agent.objects.filter(slug=data["agent"]).first()
            if agent is None:
                return error("invalid input", 400, {"agent": ["no agent with this slug"]})
        try:
            gameday = gameday_launch(
                scenario=data["scenario"], agent=agent, mode=data["mode"], actor=Actor.from_request(request)
            )
        except (ValidationError, PermissionDenied) as exc:
            return service_error(exc)
        return Response(GamedaySerializer(gameday).data, status=201)


class GamedayDetailApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(
        operation_id="gamedays_get",
        summary="A gameday and its clock, each mark in seconds from the start (null until it happens)",
        responses={200: GamedaySerializer, 404: OpenApiResponse(ERROR, description="no such gameday")},
        tags=["gamedays"],
    )
    def get(self, request: Request, pk: int) -> Response:
        try:
            gameday = selectors.gameday_get(pk=pk)
        except Gameday.DoesNotExist:
            return error("no such gameday", 404)
        return Response(GamedaySerializer(gameday).data)
