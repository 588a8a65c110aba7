"""The incidents API. Each view validates, then calls the same service as the HTML view."""

from collections.abc import Callable, Sequence

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.api import ChangeEventSerializer
from agents.permissions import IsResponder, IsViewer
from core.actors import Actor
from core.api import (
    ERRORS,
    PAGE_LIMIT_MAX,
    PageQuerySerializer,
    cursor_int,
    error,
    page_response,
    paginated,
    service_error,
)
from incidents import selectors, services
from incidents.models import Incident, IncidentStatus, RunbookStep, Severity, TimelineKind

# --- serializers ---------------------------------------------------------------------------------


class IncidentDeclareSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=services.TITLE_MAX)
    severity = serializers.ChoiceField(Severity.choices)
    failure_class = serializers.SlugField(
        max_length=63,
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text="slug of a failure class from the taxonomy; omit or null: not yet classified",
    )
    agents = serializers.ListField(child=serializers.CharField(max_length=63), default=list, help_text="agent slugs")
    traces = serializers.ListField(
        child=serializers.CharField(max_length=100),
        default=list,
        help_text="trace ids; <trace id>@<agent> picks one agent's trajectory of a multi-agent trace id",
    )
    commander = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=150, help_text="username; default: you"
    )
    summary = serializers.CharField(required=False, allow_blank=True, default="", max_length=services.SUMMARY_MAX)


class IncidentAgentSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    state = serializers.CharField(help_text="gate state: active, paused or killed")


class IncidentTraceSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    agent = serializers.CharField(source="agent.slug")
    status = serializers.CharField()
    flagged_span_id = serializers.CharField(allow_blank=True)
    flag_note = serializers.CharField(allow_blank=True)


class RunbookStepSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    phase = serializers.CharField()
    text = serializers.CharField()
    done_at = serializers.DateTimeField(allow_null=True)
    done_by = serializers.CharField(source="done_by.username", allow_null=True, default=None)


class TimelineEntrySerializer(serializers.Serializer):
    kind = serializers.CharField()
    body = serializers.CharField(help_text="Markdown for notes; plain text otherwise")
    actor = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    # DRF's metaclass takes declared fields off the class, so ``.data`` stays the serializer's output.
    data = serializers.JSONField()  # type: ignore[assignment]

    def get_actor(self, entry) -> str:
        return entry.actor_label or (entry.actor.get_username() if entry.actor else "system")


class IncidentSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    ref = serializers.CharField(help_text="INC-<number>")
    title = serializers.CharField()
    severity = serializers.CharField()
    failure_class = serializers.CharField(
        source="failure_class.slug", allow_null=True, default=None, help_text="null: not yet classified"
    )
    status = serializers.CharField()
    summary = serializers.CharField(allow_blank=True)
    commander = serializers.CharField(source="commander.username", allow_null=True, default=None)
    declared_by = serializers.CharField(source="declared_by.username", allow_null=True, default=None)
    declared_at = serializers.DateTimeField()
    investigating_at = serializers.DateTimeField(allow_null=True)
    contained_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    agents = serializers.SerializerMethodField()
    traces = serializers.SerializerMethodField()
    runbook = serializers.SerializerMethodField()
    timeline = serializers.SerializerMethodField()
    close_blockers = serializers.SerializerMethodField()
    loose_ends = serializers.SerializerMethodField(help_text="closing with these needs confirm: true")
    changes = serializers.SerializerMethodField(help_text="changes to its agents in the 24 h before declaration")
    url = serializers.SerializerMethodField()

    # The schema reads each list's type from extend_schema_field. No return annotations: a
    # many=True serializer's .data is a list, which the stubs type as one dict.
    @extend_schema_field(IncidentAgentSerializer(many=True))
    def get_agents(self, incident: Incident):
        return IncidentAgentSerializer(incident.agents.order_by("slug"), many=True).data

    @extend_schema_field(IncidentTraceSerializer(many=True))
    def get_traces(self, incident: Incident):
        return IncidentTraceSerializer(incident.traces.select_related("agent").order_by("started_at"), many=True).data

    @extend_schema_field(RunbookStepSerializer(many=True))
    def get_runbook(self, incident: Incident):
        steps = incident.runbook_steps.select_related("done_by").order_by("order", "id")
        return RunbookStepSerializer(steps, many=True).data

    @extend_schema_field(TimelineEntrySerializer(many=True))
    def get_timeline(self, incident: Incident):
        return TimelineEntrySerializer(selectors.timeline_list(incident=incident), many=True).data

    @extend_schema_field(ChangeEventSerializer(many=True))
    def get_changes(self, incident: Incident):
        return ChangeEventSerializer(selectors.incident_change_list(incident=incident), many=True).data

    def get_close_blockers(self, incident) -> list[str]:
        return selectors.incident_close_blockers(incident)

    def get_loose_ends(self, incident) -> list[str]:
        return selectors.incident_loose_ends(incident)

    def get_url(self, incident) -> str:
        return f"{settings.FIREBREAK_BASE_URL.rstrip('/')}/incidents/{incident.number}/"


# --- views ---------------------------------------------------------------------------------------


class IncidentDetailApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(
        operation_id="incidents_read",
        summary="Read an incident with its agents, traces, runbook and timeline",
        responses={200: IncidentSerializer, 404: OpenApiResponse(description="unknown incident")},
        tags=["incidents"],
    )
    def get(self, request, number: int):
        try:
            incident = selectors.incident_get(number=number)
        except Incident.DoesNotExist:
            return error(f"no incident INC-{number}", 404)
        return Response(IncidentSerializer(incident).data)


class IncidentCloseSerializer(serializers.Serializer):
    confirm = serializers.BooleanField(default=False, help_text="close even with loose ends")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=services.NOTE_MAX)


class IncidentFailureClassSerializer(serializers.Serializer):
    failure_class = serializers.SlugField(max_length=63, help_text="slug of a failure class from the taxonomy")


def _incident_or_404(number: int) -> Incident | Response:
    try:
        return selectors.incident_get(number=number)
    except Incident.DoesNotExist:
        return error(f"no incident INC-{number}", 404)


class IncidentCloseApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="incidents_close",
        summary="Close an incident (responder): 409 with blockers, or with loose_ends unless confirm is true",
        request=IncidentCloseSerializer,
        responses={200: IncidentSerializer, **ERRORS},
        tags=["incidents"],
    )
    def post(self, request, number: int):
        incident = _incident_or_404(number)
        if isinstance(incident, Response):
            return incident
        data = IncidentCloseSerializer(data=request.data)
        if not data.is_valid():
            return error("invalid input", 400, data.errors)
        try:
            services.incident_close(incident=incident, actor=Actor.from_request(request), **data.validated_data)
        except services.LooseEnds as exc:
            return Response(
                {
                    "error": "closing leaves loose ends; send confirm: true to close anyway",
                    "loose_ends": exc.loose_ends,
                },
                status=409,
            )
        except ValidationError as exc:
            if incident.status != "closed" and (blockers := selectors.incident_close_blockers(incident)):
                return Response({"error": "the incident cannot close yet", "blockers": blockers}, status=409)
            return service_error(exc)
        except PermissionDenied as exc:
            return service_error(exc)
        return Response(IncidentSerializer(selectors.incident_get(number=number)).data)


class IncidentCommandApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="incidents_take_command",
        summary="Take command of an incident (responder): you become its commander",
        request=None,
        responses={200: IncidentSerializer, **ERRORS},
        tags=["incidents"],
    )
    def post(self, request, number: int):
        incident = _incident_or_404(number)
        if isinstance(incident, Response):
            return incident
        try:
            services.incident_command_take(incident=incident, actor=Actor.from_request(request))
        except (ValidationError, PermissionDenied) as exc:
            return service_error(exc)
        return Response(IncidentSerializer(selectors.incident_get(number=number)).data)


class IncidentFailureClassApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="incidents_classify",
        summary="Set an incident's failure class (responder)",
        request=IncidentFailureClassSerializer,
        responses={200: IncidentSerializer, **ERRORS},
        tags=["incidents"],
    )
    def post(self, request, number: int):
        incident = _incident_or_404(number)
        if isinstance(incident, Response):
            return incident
        data = IncidentFailureClassSerializer(data=request.data)
        if not data.is_valid():
            return error("invalid input", 400, data.errors)
        try:
            services.incident_failure_class_set(
                incident=incident, actor=Actor.from_request(request), **data.validated_data
            )
        except (ValidationError, PermissionDenied) as exc:
            return service_error(exc)
        return Response(IncidentSerializer(selectors.incident_get(number=number)).data)


# --- the list, lifecycle, command and notes ------------------------------------------------------


class IncidentListQuerySerializer(PageQuerySerializer):
    status = serializers.ChoiceField(IncidentStatus.choices, required=False, allow_blank=True)
    severity = serializers.ChoiceField(Severity.choices, required=False, allow_blank=True)
    open = serializers.BooleanField(required=False, default=False, help_text="true: declared to resolved only")


class IncidentSummarySerializer(serializers.Serializer):
    number = serializers.IntegerField()
    ref = serializers.CharField(help_text="INC-<number>")
    title = serializers.CharField()
    severity = serializers.CharField()
    status = serializers.CharField()
    failure_class = serializers.CharField(source="failure_class.slug", allow_null=True, default=None)
    commander = serializers.CharField(source="commander.username", allow_null=True, default=None)
    declared_at = serializers.DateTimeField()
    postmortem_overdue = serializers.BooleanField()


class IncidentStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(IncidentStatus.choices, help_text="forward only; closed runs the closure checks")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=services.NOTE_MAX)


class IncidentSeveritySerializer(serializers.Serializer):
    severity = serializers.ChoiceField(Severity.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=services.NOTE_MAX)


class IncidentCommanderSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, help_text="a responder or admin")


class NoteSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=services.NOTE_MAX, help_text="Markdown (sanitized when shown)")


class TimelineQuerySerializer(PageQuerySerializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=PAGE_LIMIT_MAX, default=100)


class TimelineItemSerializer(TimelineEntrySerializer):
    id = serializers.IntegerField()


class IncidentListApi(APIView):
    """GET lists incidents; POST declares one."""

    def get_permissions(self) -> Sequence[BasePermission]:
        return [IsResponder()] if self.request.method == "POST" else [IsViewer()]

    @extend_schema(
        operation_id="incidents_list",
        summary="List incidents, newest first (paginated)",
        parameters=[IncidentListQuerySerializer],
        responses={200: paginated(IncidentSummarySerializer, "IncidentPage"), 400: ERRORS[400]},
        tags=["incidents"],
    )
    def get(self, request: Request) -> Response:
        query = IncidentListQuerySerializer(data=request.query_params)
        if not query.is_valid():
            return error("invalid input", 400, query.errors)
        data = query.validated_data
        try:
            before = cursor_int(data.get("cursor", ""))
        except serializers.ValidationError as exc:
            return error("invalid input", 400, exc.detail)
        incidents, next_before = selectors.incident_page(
            status=data.get("status", ""),
            severity=data.get("severity", ""),
            open_only=data["open"],
            before=before,
            limit=data["limit"],
        )
        return page_response(
            IncidentSummarySerializer(incidents, many=True).data, None if next_before is None else str(next_before)
        )

    @extend_schema(
        operation_id="incidents_declare",
        summary="Declare an incident (responder)",
        request=IncidentDeclareSerializer,
        responses={201: IncidentSerializer, **ERRORS},
        tags=["incidents"],
    )
    def post(self, request):
        data = IncidentDeclareSerializer(data=request.data)
        if not data.is_valid():
            return error("invalid input", 400, data.errors)
        try:
            incident = services.incident_declare(actor=Actor.from_request(request), **data.validated_data)
        except (ValidationError, PermissionDenied) as exc:
            return service_error(exc)
        return Response(IncidentSerializer(selectors.incident_get(number=incident.number)).data, status=201)


def _incident_write(
    name: str, *, summary: str, serializer: type[serializers.Serializer], call: Callable[..., object]
) -> type[APIView]:
    class IncidentWriteApi(APIView):
        permission_classes = [IsResponder]

        @extend_schema(
            operation_id=f"incidents_{name}",
            summary=summary,
            request=serializer,
            responses={200: IncidentSerializer, **ERRORS},
            tags=["incidents"],
        )
        def post(self, request: Request, number: int) -> Response:
            incident = _incident_or_404(number)
            if isinstance(incident, Response):
                return incident
            data = serializer(data=request.data)
            if not data.is_valid():
                return error("invalid input", 400, data.errors)
            try:
                call(incident=incident, actor=Actor.from_request(request), **data.validated_data)
            except services.LooseEnds as exc:
                return Response(
                    {"error": "closing leaves loose ends; close with confirm: true", "loose_ends": exc.loose_ends},
                    status=409,
                )
            except ValidationError as exc:
                if data.validated_data.get("status") == "closed" and (
                    blockers := selectors.incident_close_blockers(incident)
                ):
                    return Response({"error": "the incident cannot close yet", "blockers": blockers}, status=409)
                return service_error(exc)
            except PermissionDenied as exc:
                return service_error(exc)
            return Response(IncidentSerializer(selectors.incident_get(number=number)).data)

    IncidentWriteApi.__name__ = f"Incident{name.title().replace('_', '')}Api"
    return IncidentWriteApi


IncidentStatusApi = _incident_write(
    "status",
    summary="Move an incident forward (responder): 409 when it would move back",
    serializer=IncidentStatusSerializer,
    call=services.incident_status_set,
)
IncidentSeverityApi = _incident_write(
    "severity",
    summary="Change an incident's severity (responder)",
    serializer=IncidentSeveritySerializer,
    call=services.incident_severity_set,
)
IncidentCommanderApi = _incident_write(
    "commander",
    summary="Hand command to a responder (responder)",
    serializer=IncidentCommanderSerializer,
    call=services.incident_commander_set,
)


class IncidentNotesApi(APIView):
    def get_permissions(self) -> Sequence[BasePermission]:
        return [IsResponder()] if self.request.method == "POST" else [IsViewer()]

    @extend_schema(
        operation_id="incidents_notes_list",
        summary="An incident's notes, oldest first (paginated)",
        parameters=[TimelineQuerySerializer],
        responses={200: paginated(TimelineItemSerializer, "NotePage"), **ERRORS},
        tags=["incidents"],
    )
    def get(self, request: Request, number: int) -> Response:
        return _timeline_page(request, number, kind=TimelineKind.NOTE)

    @extend_schema(
        operation_id="incidents_notes_add",
        summary="Add a Markdown note to the timeline (responder)",
        request=NoteSerializer,
        responses={201: TimelineItemSerializer, **ERRORS},
        tags=["incidents"],
    )
    def post(self, request: Request, number: int) -> Response:
        incident = _incident_or_404(number)
        if isinstance(incident, Response):
            return incident
        data = NoteSerializer(data=request.data)
        if not data.is_valid():
            return error("invalid input", 400, data.errors)
        try:
            entry = services.timeline_note_add(
                incident=incident, body=data.validated_data["body"], actor=Actor.from_request(request)
            )
        except (ValidationError, PermissionDenied) as exc:
            return service_error(exc)
        return Response(TimelineItemSerializer(entry).data, status=201)


class IncidentTimelineApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(
        operation_id="incidents_timeline",
        summary="An incident's timeline, oldest first (paginated)",
        parameters=[TimelineQuerySerializer],
        responses={200: paginated(TimelineItemSerializer, "TimelinePage"), **ERRORS},
        tags=["incidents"],
    )
    def get(self, request: Request, number: int) -> Response:
        return _timeline_page(request, number)


def _timeline_page(request: Request, number: int, *, kind: str = "") -> Response:
    incident = _incident_or_404(number)
    if isinstance(incident, Response):
        return incident
    query = TimelineQuerySerializer(data=request.query_params)
    if not query.is_valid():
        return error("invalid input", 400, query.errors)
    try:
        after = cursor_int(query.validated_data.get("cursor", ""))
    except serializers.ValidationError as exc:
        return error("invalid input", 400, exc.detail)
    entries, next_after = selectors.timeline_page(
        incident=incident, kind=kind, after=after, limit=query.validated_data["limit"]
    )
    return page_response(
        TimelineItemSerializer(entries, many=True).data, None if next_after is None else str(next_after)
    )


class RunbookTickSerializer(serializers.Serializer):
    done = serializers.BooleanField(default=True, help_text="false: not done after all")


class RunbookTickApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="incidents_runbook_tick",
        summary="Mark a runbook step done, or not done (responder)",
        request=RunbookTickSerializer,
        responses={200: RunbookStepSerializer, **ERRORS},
        tags=["incidents"],
    )
    def post(self, request: Request, number: int, step_id: int) -> Response:
        incident = _incident_or_404(number)
        if isinstance(incident, Response):
            return incident
        data = RunbookTickSerializer(data=request.data)
        if not data.is_valid():
            return error("invalid input", 400, data.errors)
        try:
            step = services.runbook_tick(
                incident=incident, step_id=step_id, actor=Actor.from_request(request), done=data.validated_data["done"]
            )
        except RunbookStep.DoesNotExist:
            return error(f"INC-{number} has no runbook step {step_id}", 404)
        except (ValidationError, PermissionDenied) as exc:
            return service_error(exc)
        return Response(RunbookStepSerializer(step).data)
