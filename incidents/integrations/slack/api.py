"""Slack's requests to Firebreak: the Events API, interactions (buttons) and the ``/firebreak`` slash
command. One APIView per request URL of the Slack app.

Each request is verified before anything is read from it: Slack's signature
(``X-Slack-Signature: v0=HMAC-SHA256(signing secret, "v0:{timestamp}:{raw body}")``) with
``FIREBREAK_SLACK_SIGNING_SECRET``, refused when forged or older than five minutes (401, nothing
done). Slack waits 3 s for the answer: the kill, pause, acknowledge and declare are quick and run
inline; the reply to a button press goes through the request's ``response_url`` from a task.
"""

import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from slack_sdk.signature import SignatureVerifier

from core.api import error
from incidents.integrations.slack import messages, services
from incidents.integrations.slack.tasks import slack_respond_task

logger = logging.getLogger(__name__)

MAX_AGE = 60 * 5  # seconds: Slack's documented replay window


def _verified(request: Request) -> Response | None:
    """None when the request is Slack's and fresh; else the refusal to answer."""
    secret = settings.FIREBREAK_SLACK_SIGNING_SECRET
    if not secret:
        return error("the Slack app is not configured here (FIREBREAK_SLACK_SIGNING_SECRET)", status.HTTP_403_FORBIDDEN)
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        return error("X-Slack-Signature and X-Slack-Request-Timestamp are required", status.HTTP_401_UNAUTHORIZED)
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return error("X-Slack-Request-Timestamp: not a Unix time", status.HTTP_401_UNAUTHORIZED)
    if age > MAX_AGE:
        return error("X-Slack-Request-Timestamp: older than five minutes", status.HTTP_401_UNAUTHORIZED)
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return error("the body is not UTF-8", status.HTTP_400_BAD_REQUEST)
    if not SignatureVerifier(secret).is_valid(body=body, timestamp=timestamp, signature=signature):
        logger.warning("Slack request with a bad signature refused: %s", request.path)
        return error("X-Slack-Signature: does not match the body", status.HTTP_401_UNAUTHORIZED)
    return None


def _form(request: Request) -> dict[str, str] | Response:
    try:
        parsed = parse_qs(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return error("the body is not UTF-8", status.HTTP_400_BAD_REQUEST)
    return {key: values[0] for key, values in parsed.items()}


class _SlackView(APIView):
    # Slack signs its requests; it holds no Firebreak key or session (so no CSRF either).
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []


# Slack's request URLs: signed by Slack (X-Slack-Signature), documented here for the operator who sets up the app.
@extend_schema(
    summary="Slack Events API request URL (url_verification; other events acknowledged)",
    request=None,
    responses={
        200: OpenApiResponse(description="handled (Slack shows the reply)"),
        400: OpenApiResponse(description="signed, but not what Slack sends; nothing done"),
        401: OpenApiResponse(description="signature missing, wrong or older than 5 minutes; nothing done"),
        403: OpenApiResponse(description="Slack is not configured (FIREBREAK_SLACK_SIGNING_SECRET unset)"),
    },
)
class SlackEventsApi(_SlackView):
    """Events API: answers the ``url_verification`` challenge; other events are acknowledged."""

    def post(self, request: Request) -> Response:
        refused = _verified(request)
        if refused is not None:
            return refused
        try:
            body = json.loads(request.body)
        except ValueError:
            return error("the body is not JSON", status.HTTP_400_BAD_REQUEST)
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            return error("type: required", status.HTTP_400_BAD_REQUEST)
        if body["type"] == "url_verification":
            challenge = body.get("challenge")
            if not isinstance(challenge, str) or not challenge:
                return error("challenge: required", status.HTTP_400_BAD_REQUEST)
            return Response({"challenge": challenge})
        return Response(status=status.HTTP_200_OK)


@extend_schema(
    summary="Slack interactivity request URL (an alert's Kill / Pause / Acknowledge buttons)",
    request=None,
    responses={
        200: OpenApiResponse(description="handled (Slack shows the reply)"),
        400: OpenApiResponse(description="signed, but not what Slack sends; nothing done"),
        401: OpenApiResponse(description="signature missing, wrong or older than 5 minutes; nothing done"),
        403: OpenApiResponse(description="Slack is not configured (FIREBREAK_SLACK_SIGNING_SECRET unset)"),
    },
)
class SlackInteractionsApi(_SlackView):
    """Interactivity: ``block_actions`` from an alert's Kill / Pause / Acknowledge buttons."""

    def post(self, request: Request) -> Response:
        refused = _verified(request)
        if refused is not None:
            return refused
        form = _form(request)
        if isinstance(form, Response):
            return form
        try:
            payload = json.loads(form.get("payload", ""))
        except ValueError:
            return error("payload: required, a JSON object", status.HTTP_400_BAD_REQUEST)
        if not isinstance(payload, dict):
            return error("payload: required, a JSON object", status.HTTP_400_BAD_REQUEST)
        if payload.get("type") != "block_actions":
            return Response(status=status.HTTP_200_OK)  # shortcuts, views: nothing of ours
        user = payload.get("user") or {}
        actions = payload.get("actions") or []
        if not isinstance(user, dict) or not isinstance(user.get("id"), str) or not user["id"]:
            return error("payload.user.id: required", status.HTTP_400_BAD_REQUEST)
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
            return error("payload.actions: required, a list of actions", status.HTTP_400_BAD_REQUEST)
        action = actions[0]
        action_id = action.get("action_id")
        if action_id not in messages.ACTIONS:
            return Response(status=status.HTTP_200_OK)  # another app's or an old button: nothing to do
        try:
            value = json.loads(action.get("value") or "")
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, dict) or not isinstance(value.get("alert"), int):
            return error("payload.actions[0].value: not a Firebreak alert button", status.HTTP_400_BAD_REQUEST)
        team = payload.get("team") or {}
        reply = services.slack_button_press(
            slack_user_id=user["id"],
            team_id=str(team.get("id", "")) if isinstance(team, dict) else "",
            action_id=action_id,
            value=value,
        )
        response_url = payload.get("response_url")
        if isinstance(response_url, str) and response_url:
            try:
                slack_respond_task.delay(response_url, reply.text)
            except Exception:
                logger.exception("could not enqueue the Slack reply")
        return Response(status=status.HTTP_200_OK)


@extend_schema(
    summary="Slack slash command request URL (/firebreak declare | kill | pause | status | help)",
    request=None,
    responses={
        200: OpenApiResponse(description="the answer, an ephemeral message for whoever typed it"),
        400: OpenApiResponse(description="signed, but not what Slack sends; nothing done"),
        401: OpenApiResponse(description="signature missing, wrong or older than 5 minutes; nothing done"),
        403: OpenApiResponse(description="Slack is not configured (FIREBREAK_SLACK_SIGNING_SECRET unset)"),
    },
)
class SlackCommandsApi(_SlackView):
    """The ``/firebreak`` slash command; the answer is an ephemeral message for whoever typed it."""

    def post(self, request: Request) -> Response:
        refused = _verified(request)
        if refused is not None:
            return refused
        form = _form(request)
        if isinstance(form, Response):
            return form
        if not form.get("user_id"):
            return error("user_id: required", status.HTTP_400_BAD_REQUEST)
        reply = services.slack_command_run(
            slack_user_id=form["user_id"], team_id=form.get("team_id", ""), text=form.get("text", "")
        )
        return Response({"response_type": "ephemeral", "text": reply.text})
