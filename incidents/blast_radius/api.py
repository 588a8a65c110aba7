"""The blast radius API: the same selector as the panel, read-only (viewers may read)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.permissions import IsViewer
from core.api import ERROR, error
from incidents.blast_radius.selectors import TIMELINE_USER_LIMIT, TRACE_LIMIT, blast_radius
from incidents.blast_radius.signature import BlastParamError, signature_parse
from incidents.models import Incident


class BlastSignatureSerializer(serializers.Serializer):
    tool = serializers.CharField(allow_blank=True)
    args = serializers.CharField(allow_blank=True)
    model_version = serializers.CharField(allow_blank=True)
    prompt_version = serializers.CharField(allow_blank=True)
    input_class = serializers.CharField(allow_blank=True)
    action_hash = serializers.CharField(allow_blank=True)
    trace = serializers.CharField(allow_blank=True)
    agents = serializers.ListField(child=serializers.CharField())


class BlastWindowSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()


class BlastTraceSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    agent = serializers.CharField(help_text="the agent slug: open it as /traces/<trace_id>/?agent=<slug>")


class BlastRadiusSerializer(serializers.Serializer):
    signature = BlastSignatureSerializer()
    window = BlastWindowSerializer()
    trajectories = serializers.IntegerField()
    distinct_users = serializers.IntegerField()
    still_running = serializers.IntegerField()
    user_ids = serializers.ListField(
        child=serializers.CharField(), help_text=f"sorted; the first {TIMELINE_USER_LIMIT}"
    )
    traces = serializers.ListField(
        child=serializers.CharField(), help_text=f"trace ids, newest first; the first {TRACE_LIMIT}"
    )
    trace_list = BlastTraceSerializer(
        many=True,
        help_text="the same trajectories with their agent (a trace id may hold several agents' trajectories)",
    )
    computed_at = serializers.DateTimeField()


def _str(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.QUERY, required=False, description=description)


PARAMETERS = [
    _str("tool", "tool name of a step (exact)"),
    _str(
        "args",
        "text the step's arguments (as JSON text) contain, case-insensitive; "
        "prefix `re:` for a case-insensitive regular expression. Without `tool`, `action_hash` or `trace`, the text "
        "must be 3 characters or more, and a regular expression must hold 3 or more literal characters every match "
        "contains (an index serves the search from them); otherwise 400",
    ),
    _str("model_version", "the trace's model version (exact)"),
    _str("prompt_version", "the trace's prompt version (exact)"),
    _str("input_class", "the trace's input class (exact)"),
    _str("action_hash", "a step's action hash (tool + canonical arguments)"),
    _str("trace", "a trace id, or <trace id>@<agent>: use the action hash of that trajectory's flagged step"),
    OpenApiParameter(
        "agent",
        OpenApiTypes.STR,
        OpenApiParameter.QUERY,
        required=False,
        many=True,
        explode=True,
        description="agent slug; repeat for several",
    ),
    OpenApiParameter(
        "since",
        OpenApiTypes.DATETIME,
        OpenApiParameter.QUERY,
        required=False,
        description="ISO 8601; default 24 h before the incident was declared (naive times are UTC)",
    ),
    OpenApiParameter(
        "until", OpenApiTypes.DATETIME, OpenApiParameter.QUERY, required=False, description="ISO 8601; default now"
    ),
]


class BlastRadiusApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(
        operation_id="incident_blast_radius",
        summary="Blast radius of an incident's signature",
        description="Trajectories (traces started in the window) that match every given criterion; "
        "step criteria (tool, args, action_hash/trace) must hold on one step. Counts distinct users "
        "and runs still running. Nothing is written. At least one criterion is required.",
        parameters=PARAMETERS,
        responses={
            200: BlastRadiusSerializer,
            400: OpenApiResponse(ERROR, description="a bad parameter, named in `detail.param`"),
            401: OpenApiResponse(ERROR, description="no or unknown key"),
            403: OpenApiResponse(ERROR, description="not allowed"),
            404: OpenApiResponse(ERROR, description="unknown incident"),
        },
        tags=["incidents"],
    )
    def get(self, request, number: int):
        incident = Incident.objects.filter(number=number).first()
        if incident is None:
            return error(f"no incident {number}", 404)
        try:
            signature, since, until = signature_parse(request.query_params, incident=incident)
        except BlastParamError as exc:
            return error(f"{exc.param}: {exc.message}", 400, {"param": exc.param, "message": exc.message})
        result = blast_radius(signature=signature, since=since, until=until)
        return Response(
            {
                "signature": signature.as_dict(),
                "window": {"since": since, "until": until},
                "trajectories": result.trajectories,
                "distinct_users": result.distinct_users,
                "still_running": result.still_running,
                "user_ids": result.user_ids,
                "traces": [t.trace_id for t in result.traces],
                "trace_list": [{"trace_id": t.trace_id, "agent": t.agent.slug} for t in result.traces],
                "computed_at": result.computed_at,
            }
        )
