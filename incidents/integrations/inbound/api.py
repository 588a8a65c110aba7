"""POST /api/v1/integrations/alertmanager · /grafana · /datadog · /webhook: alerts from outside.

Each view validates the whole body before anything is written (a 400 naming the field), then hands
the batch to ``inbound_alerts_receive`` (one transaction). The key: an integration key
(``createapikey --integration <name>``) or a responder's own; never an agent's, never a viewer's.
A store that is down is a 503 with Retry-After (``core.views.server_error``), which every sender retries.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.permissions import CanPostInbound, is_integration_key
from core.api import ERRORS, error
from core.errors import error_detail
from core.parsers import BoundedJSONParser
from incidents.integrations.inbound import payloads
from incidents.integrations.inbound.payloads import InboundAlert
from incidents.integrations.inbound.services import inbound_alerts_receive
from incidents.models import Alert

RESULT = inline_serializer(
    "InboundResult",
    {
        "source": serializers.CharField(),
        "integration": serializers.CharField(),
        "received": serializers.IntegerField(),
        "alerts": serializers.ListField(child=serializers.DictField()),
    },
)


def integration_name(request: Request) -> str:
    """The name recorded on the alerts: the integration key's, or ``user:<username>`` for a person."""
    if is_integration_key(request):
        return str(getattr(request.auth, "integration", ""))
    return f"user:{request.user.get_username()}"[:100]


class InboundApi(APIView):
    """One source's endpoint; subclasses name the source and its parser."""

    permission_classes = [CanPostInbound]
    parser_classes = [BoundedJSONParser]
    source: str = ""

    def parse(self, request: Request) -> list[InboundAlert]:
        raise NotImplementedError

    def post(self, request: Request) -> Response:
        limit = settings.FIREBREAK_INBOUND_MAX_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit or len(request.body) > limit:
            return error(f"body: larger than {limit} bytes", status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        try:
            alerts = self.parse(request)
        except ValidationError as exc:
            return error("invalid input; nothing written", status.HTTP_400_BAD_REQUEST, error_detail(exc))
        if len(alerts) > settings.FIREBREAK_INBOUND_MAX_ALERTS:
            return error(
                "invalid input; nothing written",
                status.HTTP_400_BAD_REQUEST,
                {"alerts": [f"at most {settings.FIREBREAK_INBOUND_MAX_ALERTS} alerts in one request"]},
            )
        integration = integration_name(request)
        outcomes = inbound_alerts_receive(source=self.source, integration=integration, alerts=alerts)
        return Response(
            {
                "source": self.source,
                "integration": integration,
                "received": len(alerts),
                "alerts": [
                    {
                        "fingerprint": o.fingerprint,
                        "action": o.action,
                        "alert": o.alert.pk if o.alert else None,
                        "agent": o.alert.agent.slug if o.alert and o.alert.agent else None,
                        **({"note": o.note} if o.note else {}),
                    }
                    for o in outcomes
                ],
            }
        )


def _documented(request: Any, **extra: Any) -> Callable[[type[InboundApi]], type[InboundApi]]:
    """The endpoint's OpenAPI entry: the vendor's payload shape in, the outcome per alert out."""
    decorate: Callable[[type[InboundApi]], type[InboundApi]] = extend_schema_view(
        post=extend_schema(request=request, responses={200: RESULT, 413: ERRORS[400], **ERRORS}, **extra)
    )
    return decorate


@_documented(payloads.AlertmanagerPayload)
class AlertmanagerApi(InboundApi):
    """Prometheus Alertmanager's webhook receiver payload (``"version": "4"``)."""

    source = Alert.Source.ALERTMANAGER

    def parse(self, request: Request) -> list[InboundAlert]:
        return payloads.alertmanager_parse(request.data)


@_documented(payloads.GrafanaPayload)
class GrafanaApi(InboundApi):
    """A Grafana Alerting webhook contact point's payload."""

    source = Alert.Source.GRAFANA

    def parse(self, request: Request) -> list[InboundAlert]:
        return payloads.grafana_parse(request.data)


@_documented(payloads.DatadogPayload)
class DatadogApi(InboundApi):
    """The Datadog Webhooks integration, with the payload template in the README."""

    source = Alert.Source.DATADOG

    def parse(self, request: Request) -> list[InboundAlert]:
        return payloads.datadog_parse(request.data)


@_documented(
    OpenApiTypes.OBJECT,
    parameters=[
        OpenApiParameter(
            name, str, description=f"JSON path of the alert's {name}, e.g. $.{name}", required=name == "title"
        )
        for name in payloads.WEBHOOK_PARAMS
    ],
)
class WebhookApi(InboundApi):
    """Any JSON; the query string maps JSON paths to the alert's fields (``?title=$.name&status=$.state``)."""

    source = Alert.Source.WEBHOOK

    def parse(self, request: Request) -> list[InboundAlert]:
        return payloads.webhook_parse(request.data, request.query_params.dict())
