"""``POST /api/v1/integrations/pagerduty/webhook``: PagerDuty's signed v3 webhooks.

No API key: the ``X-PagerDuty-Signature`` (HMAC-SHA256 of the raw body with the subscription's secret)
is the authentication. Without FIREBREAK_PAGERDUTY_WEBHOOK_SECRET the endpoint answers 404 saying
paging webhooks are not configured: a setting, not an outage, so no 503 inviting a retry.
Anything signed that Firebreak does not act on answers 202 (PagerDuty retries every non-2xx).
"""

import json
import logging

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import error
from incidents.integrations.pagerduty import services

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-PagerDuty-Signature"

_RESULT = inline_serializer("PagerDutyWebhookResult", {"status": serializers.CharField()})


class PagerDutyWebhookApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]  # the signature is checked below, before anything is read or written
    throttle_classes: list = []  # PagerDuty's acknowledge must be heard

    @extend_schema(
        summary="PagerDuty v3 webhook (incident.acknowledged, incident.resolved)",
        request=None,
        responses={
            202: OpenApiResponse(_RESULT, description="applied, unchanged (a replay) or ignored"),
            400: OpenApiResponse(description="signed, but not a v3 webhook; nothing written"),
            401: OpenApiResponse(description="signature missing or wrong; nothing written"),
            404: OpenApiResponse(description="paging webhooks are not configured"),
        },
    )
    def post(self, request: Request) -> Response:
        secrets = services.webhook_secrets()
        if not secrets:
            return error(
                "PagerDuty webhooks are not configured: set FIREBREAK_PAGERDUTY_WEBHOOK_SECRET.",
                status.HTTP_404_NOT_FOUND,
            )
        body = request.body  # the raw bytes PagerDuty signed, before any parsing
        header = request.headers.get(SIGNATURE_HEADER, "")
        if not services.webhook_verify(body=body, header=header, secrets=secrets):
            logger.warning("PagerDuty webhook refused: %s", "bad signature" if header else "no signature")
            return error(f"{SIGNATURE_HEADER} is missing or does not match.", status.HTTP_401_UNAUTHORIZED)
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            return error("invalid input", status.HTTP_400_BAD_REQUEST, {"body": ["Not JSON."]})
        try:
            event = services.webhook_parse(data)
        except services.ValidationError as exc:
            return error("invalid input", status.HTTP_400_BAD_REQUEST, exc.message_dict)
        outcome = services.webhook_apply(event=event)
        logger.info("PagerDuty webhook %s %s (%s): %s", event.event_type, event.event_id, event.incident_key, outcome)
        return Response({"status": outcome}, status=status.HTTP_202_ACCEPTED)
