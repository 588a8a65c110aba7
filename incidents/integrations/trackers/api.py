"""Tracker API: ask for an action item's issue (the same service as the page's button), and the three webhooks.

The webhooks take no API key: each proves itself with the tracker's signature over the raw body
(``webhooks.py``). Unsigned or forged → 401 and nothing written; a tracker without a webhook secret
configured → 404; an event about an issue no action item has → 200 ``{"ignored": true}``.
"""

import json
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.permissions import IsResponder
from core.actors import Actor
from core.api import ERRORS, error, service_error
from core.views import RETRY_AFTER_SECONDS
from incidents.integrations.trackers import clients, services, webhooks
from incidents.integrations.trackers.webhooks import StatusChange
from incidents.models import ActionItem, Incident
from incidents.postmortems import selectors as postmortem_selectors
from incidents.selectors import incident_get


class IssueRequestSerializer(serializers.Serializer):
    tracker = serializers.ChoiceField(choices=list(clients.TRACKERS), help_text="jira, linear or github")


class IssueRequestedSerializer(serializers.Serializer):
    action_item = serializers.IntegerField()
    tracker = serializers.CharField()
    issue_state = serializers.CharField(help_text="pending: the issue is being created (see the action item's row)")
    delivery = serializers.IntegerField(help_text="the Delivery row that logs the attempt")


class ActionItemIssueApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="postmortems_action_item_issue",
        summary="Create an action item's issue in Jira, Linear or GitHub (responder); created in the background",
        request=IssueRequestSerializer,
        responses={
            202: IssueRequestedSerializer,
            **ERRORS,
            503: OpenApiResponse(description="Redis is unavailable: nothing queued, retry after Retry-After"),
        },
        tags=["incidents"],
    )
    def post(self, request: Request, number: int, item_id: int) -> Response:
        try:
            incident = incident_get(number=number)
        except Incident.DoesNotExist:
            return error(f"no incident INC-{number}", 404)
        postmortem = postmortem_selectors.postmortem_get(incident=incident)
        if postmortem is None:
            return error(f"INC-{number} has no post-mortem yet", 404)
        item = ActionItem.objects.filter(pk=item_id, postmortem=postmortem).first()
        if item is None:
            return error(f"INC-{number}'s post-mortem has no action item {item_id}", 404)
        data = IssueRequestSerializer(data=request.data)
        if not data.is_valid():
            return error("invalid input", 400, data.errors)
        try:
            delivery = services.action_item_issue_request(
                item=item, tracker=data.validated_data["tracker"], actor=Actor.from_request(request)
            )
        except ValidationError as exc:
            return service_error(exc)
        item.refresh_from_db(fields=["issue_state"])
        if item.issue_state == ActionItem.IssueState.FAILED:
            # The task could not be queued (Redis down): the item says so and may be asked again.
            response = error("could not queue the request (Redis unavailable); retry shortly", 503)
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        body = {
            "action_item": item.pk,
            "tracker": item.tracker,
            "issue_state": item.issue_state,
            "delivery": delivery.pk,
        }
        return Response(IssueRequestedSerializer(body).data, status=202)


WEBHOOK_RESPONSES = {
    200: OpenApiResponse(description="applied (`action_item`, `status`) or `ignored`"),
    400: ERRORS[400],
    401: OpenApiResponse(description="missing or wrong signature (or a stale Linear delivery); nothing written"),
    404: OpenApiResponse(description="this tracker's webhook secret is not configured"),
}


class _TrackerWebhook(APIView):
    """Verify, parse, apply. Subclasses say which tracker, which secret, and how to read the event."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    tracker = ""

    def secret(self) -> str:
        raise NotImplementedError

    def signature(self, request: Request) -> str:
        raise NotImplementedError

    def change(self, request: Request, payload: dict[str, Any]) -> StatusChange | None:
        raise NotImplementedError

    def post(self, request: Request) -> Response:
        secret = self.secret()
        if not secret:
            return error(f"the {clients.LABELS[self.tracker]} webhook is not configured", 404)
        body = request.body
        if not webhooks.signature_valid(scheme=self.tracker, secret=secret, body=body, header=self.signature(request)):
            return error("missing or invalid signature", 401)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return error("invalid input", 400, {"body": ["not JSON"]})
        if not isinstance(payload, dict):
            return error("invalid input", 400, {"body": ["expected a JSON object"]})
        if self.tracker == "linear" and not webhooks.linear_fresh(payload, now_ms=int(time.time() * 1000)):
            return error("stale or missing webhookTimestamp (older than a minute)", 401)
        change = self.change(request, payload)
        if change is None:
            return Response({"ignored": True, "why": "not an issue status change this webhook follows"})
        item = services.action_item_issue_sync(tracker=self.tracker, change=change)
        if item is None:
            return Response({"ignored": True, "why": f"no action item has {change.key}"})
        return Response({"action_item": item.pk, "status": item.status, "issue_status": item.issue_status})


@extend_schema_view(
    post=extend_schema(
        operation_id="integrations_jira_webhook",
        summary="Jira Cloud admin webhook (X-Hub-Signature: sha256=…): an issue's status moves its action item",
        request=None,
        responses=WEBHOOK_RESPONSES,
        tags=["integrations"],
    )
)
class JiraWebhookApi(_TrackerWebhook):
    tracker = "jira"

    def secret(self) -> str:
        return str(settings.FIREBREAK_JIRA_WEBHOOK_SECRET)

    def signature(self, request: Request) -> str:
        return str(request.headers.get("X-Hub-Signature", ""))

    def change(self, request: Request, payload: dict[str, Any]) -> StatusChange | None:
        return webhooks.jira_change(payload)


@extend_schema_view(
    post=extend_schema(
        operation_id="integrations_linear_webhook",
        summary="Linear webhook (Linear-Signature, webhookTimestamp): an issue's state moves its action item",
        request=None,
        responses=WEBHOOK_RESPONSES,
        tags=["integrations"],
    )
)
class LinearWebhookApi(_TrackerWebhook):
    tracker = "linear"

    def secret(self) -> str:
        return str(settings.FIREBREAK_LINEAR_WEBHOOK_SECRET)

    def signature(self, request: Request) -> str:
        return str(request.headers.get("Linear-Signature", ""))

    def change(self, request: Request, payload: dict[str, Any]) -> StatusChange | None:
        return webhooks.linear_change(payload)


@extend_schema_view(
    post=extend_schema(
        operation_id="integrations_github_webhook",
        summary="GitHub webhook (X-Hub-Signature-256): closing or reopening an issue moves its action item",
        request=None,
        responses=WEBHOOK_RESPONSES,
        tags=["integrations"],
    )
)
class GitHubWebhookApi(_TrackerWebhook):
    tracker = "github"

    def secret(self) -> str:
        return str(settings.FIREBREAK_GITHUB_WEBHOOK_SECRET)

    def signature(self, request: Request) -> str:
        return str(request.headers.get("X-Hub-Signature-256", ""))

    def change(self, request: Request, payload: dict[str, Any]) -> StatusChange | None:
        event = str(request.headers.get("X-GitHub-Event", ""))
        return webhooks.github_change(payload, event=event, repo=str(settings.FIREBREAK_GITHUB_REPO))
