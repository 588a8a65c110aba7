"""The alerts API: list, read, acknowledge, resolve. Each view validates, then calls the same selector or
service as the alert list page (incidents/alerts/views.py)."""

from collections.abc import Callable

from django.core.exceptions import PermissionDenied, ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.permissions import IsResponder, IsViewer
from core.actors import Actor
from core.api import ERRORS, PageQuerySerializer, cursor_int, error, page_response, paginated, service_error
from incidents.alerts import selectors, services
from incidents.models import Alert

# --- serializers ---------------------------------------------------------------------------------


class AlertListQuerySerializer(PageQuerySerializer):
    agent = serializers.SlugField(required=False, allow_blank=True, max_length=63, help_text="agent slug")
    status = serializers.ChoiceField(Alert.Status.choices, required=False, allow_blank=True)


class AlertSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    detector = serializers.CharField(help_text="the detector or integration that raised it")
    # null for an alert that no agent's label named (inbound alerts from monitoring)
    agent = serializers.CharField(source="agent.slug", allow_null=True, default=None)
    title = serializers.CharField()
    status = serializers.ChoiceField(Alert.Status.choices)
    suggested_severity = serializers.CharField()
    failure_class = serializers.CharField(source="failure_class.slug", allow_null=True, default=None)
    trace_id = serializers.CharField(source="trace.trace_id", allow_null=True, default=None)
    span_id = serializers.CharField(allow_blank=True)
    incident = serializers.IntegerField(source="incident.number", allow_null=True, default=None)
    count = serializers.IntegerField(help_text="occurrences (deduplicated by fingerprint)")
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    handled_by = serializers.CharField(allow_blank=True)
    handled_at = serializers.DateTimeField(allow_null=True)
    details = serializers.JSONField()


def _alert_or_404(pk: int) -> Alert | Response:
    try:
        return selectors.alert_get(pk=pk)
    except Alert.DoesNotExist:
        return error(f"no alert {pk}", 404)


# --- views ---------------------------------------------------------------------------------------


class AlertListApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(
        operation_id="alerts_list",
        summary="List alerts, newest first (paginated)",
        parameters=[AlertListQuerySerializer],
        responses={200: paginated(AlertSerializer, "AlertPage"), 400: ERRORS[400]},
        tags=["alerts"],
    )
    def get(self, request: Request) -> Response:
        query = AlertListQuerySerializer(data=request.query_params)
        if not query.is_valid():
            return error("invalid input", 400, query.errors)
        data = query.validated_data
        try:
            before = cursor_int(data.get("cursor", ""))
        except serializers.ValidationError as exc:
            return error("invalid input", 400, exc.detail)
        alerts, next_before = selectors.alert_page(
            status=data.get("status", ""), agent=data.get("agent", ""), before=before, limit=data["limit"]
        )
        return page_response(AlertSerializer(alerts, many=True).data, None if next_before is None else str(next_before))


class AlertDetailApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(
        operation_id="alerts_read",
        summary="Read an alert",
        responses={200: AlertSerializer, 404: OpenApiResponse(description="unknown alert")},
        tags=["alerts"],
    )
    def get(self, request: Request, pk: int) -> Response:
        alert = _alert_or_404(pk)
        if isinstance(alert, Response):
            return alert
        return Response(AlertSerializer(alert).data)


def _alert_action(name: str, *, summary: str, service: Callable[..., Alert]) -> type[APIView]:
    class AlertActionApi(APIView):
        permission_classes = [IsResponder]

        @extend_schema(
            operation_id=f"alerts_{name}",
            summary=summary,
            request=None,
            responses={200: AlertSerializer, **ERRORS},
            tags=["alerts"],
        )
        def post(self, request: Request, pk: int) -> Response:
            alert = _alert_or_404(pk)
            if isinstance(alert, Response):
                return alert
            try:
                service(alert=alert, actor=Actor.from_request(request))
            except (ValidationError, PermissionDenied) as exc:
                return service_error(exc)
            return Response(AlertSerializer(selectors.alert_get(pk=pk)).data)

    AlertActionApi.__name__ = f"Alert{name.title()}Api"
    return AlertActionApi


AlertAcknowledgeApi = _alert_action(
    "acknowledge",
    summary="Acknowledge an open alert (responder); 409 unless it is open",
    service=services.alert_acknowledge,
)
AlertResolveApi = _alert_action(
    "resolve", summary="Resolve an alert (responder); 409 when it is already resolved", service=services.alert_resolve
)
