"""The Slack app's writes: the outbound posts (incident channel, timeline, alerts) and the inbound
actions (buttons, ``/firebreak``), which run as the mapped Firebreak user through the same services
as the pages.

Every post to Slack is one ``Delivery`` row (channel "slack", target the Slack channel, never the
token). A retryable fault (Slack 5xx or rate limit, no connection) raises :class:`SlackUnavailable`
after the delivery is marked failed-and-retrying, so the Celery task retries it; anything else
marks it failed for good.
"""

import contextlib
import logging
import urllib.error
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from redis.exceptions import LockError
from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError, SlackClientError

from agents.models import Agent, GateState
from agents.services import agent_kill, agent_pause
from core.actors import Actor
from core.errors import error_messages
from core.redis import get_redis
from core.roles import RESPONDER, has_role
from incidents.alerts.services import alert_acknowledge
from incidents.integrations.slack import messages
from incidents.models import (
    OPEN_STATUSES,
    Alert,
    Delivery,
    Incident,
    SlackAlertMessage,
    SlackChannel,
    SlackUser,
    TimelineEntry,
)
from incidents.notifications.deliveries import delivery_failed, delivery_record, delivery_sent
from incidents.services import incident_declare

logger = logging.getLogger(__name__)

CHANNEL = Delivery.Channel.SLACK
NAME_ATTEMPTS = 20  # inc-42-title, inc-42-title-2 … before giving up
TIMEOUT = 10  # seconds, outbound from a worker
INLINE_TIMEOUT = 2  # seconds, users.info while Slack waits for our answer (3 s)
LOCK_PREFIX = "firebreak:slack:timeline:"
_LAST_ATTEMPT: ContextVar[bool] = ContextVar("firebreak_slack_last_attempt", default=False)
RETRYABLE_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}


class SlackUnavailable(Exception):
    """Slack could not be reached or answered a retryable error: try again later."""


class SlackRefused(Exception):
    """Slack answered ``ok: false`` with an error retrying cannot fix (``channel_not_found``…)."""


def slack_enabled() -> bool:
    return bool(settings.FIREBREAK_SLACK_BOT_TOKEN)


def slack_client(*, timeout: int = TIMEOUT) -> WebClient:
    base = settings.FIREBREAK_SLACK_API_URL
    # No retry inside the client: the Celery task retries with backoff, and inline calls must stay quick.
    return WebClient(
        token=settings.FIREBREAK_SLACK_BOT_TOKEN,
        base_url=base if base.endswith("/") else base + "/",
        timeout=timeout,
        retry_handlers=[],
    )


def _call(method: str, **kwargs: Any) -> dict[str, Any]:
    """One Web API call; its answer's data, or SlackUnavailable / SlackRefused."""
    client = slack_client(timeout=kwargs.pop("_timeout", TIMEOUT))
    try:
        response = getattr(client, method)(**kwargs)
    except SlackApiError as exc:
        status = exc.response.status_code
        error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
        if status == 429 or status >= 500 or error in RETRYABLE_ERRORS:
            raise SlackUnavailable(f"Slack answered {status} {error or ''}".strip()) from exc
        raise SlackRefused(error or f"HTTP {status}") from exc
    except (SlackClientError, urllib.error.URLError, OSError) as exc:
        raise SlackUnavailable(f"Slack unreachable: {type(exc).__name__}") from exc
    data: dict[str, Any] = response.data if isinstance(response.data, dict) else {}
    return data


def _delivery(
    *,
    target: str,
    event: str,
    incident: Incident | None = None,
    alert: Alert | None = None,
    detail: dict[str, Any] | None = None,
) -> Delivery:
    """The delivery of this post: the pending one a failed attempt left (a retry counts on the same
    row), else a new one."""
    pending = Delivery.objects.filter(
        channel=CHANNEL,
        status=Delivery.Status.PENDING,
        target=target[:200],
        event=event[:60],
        incident=incident,
        alert=alert,
    )
    if detail:
        pending = pending.filter(detail__contains=detail)
    found = pending.order_by("-pk").first()
    if found is not None:
        return found
    return delivery_record(channel=CHANNEL, target=target, event=event, incident=incident, alert=alert, detail=detail)


@contextlib.contextmanager
def slack_attempt(*, last: bool) -> Iterator[None]:
    """Around a task's call of a service: on its ``last`` attempt, a post Slack cannot take now is
    failed for good rather than left pending for a retry that will not come."""
    token = _LAST_ATTEMPT.set(last)
    try:
        yield
    finally:
        _LAST_ATTEMPT.reset(token)


def _send(delivery: Delivery, method: str, **kwargs: Any) -> dict[str, Any]:
    """``_call`` with the outcome written on ``delivery``."""
    try:
        data = _call(method, **kwargs)
    except SlackUnavailable as exc:
        delivery_failed(delivery=delivery, error=str(exc), retrying=not _LAST_ATTEMPT.get())
        raise
    except SlackRefused as exc:
        delivery_failed(delivery=delivery, error=f"Slack refused {method}: {exc}")
        raise
    detail = {k: data[k] for k in ("ts",) if k in data}
    delivery_sent(delivery=delivery, detail=detail)
    return data


# --- outbound: the incident channel ------------------------------------------------------------------


def _channel_create(incident: Incident) -> SlackChannel:
    for attempt in range(NAME_ATTEMPTS):
        name = messages.channel_name(incident, suffix=attempt + 1 if attempt else 0)
        delivery = _delivery(target=f"#{name}", event="incident.channel_created", incident=incident)
        try:
            data = _send(delivery, "conversations_create", name=name, is_private=False)
        except SlackRefused as exc:
            if str(exc) == "name_taken":
                continue
            raise
        channel_id = str(data["channel"]["id"])
        try:
            with transaction.atomic():
                return SlackChannel.objects.create(incident=incident, channel_id=channel_id, name=name)
        except IntegrityError:  # another worker made it meanwhile: use theirs
            return SlackChannel.objects.get(incident=incident)
    raise SlackRefused(f"every channel name up to -{NAME_ATTEMPTS} is taken")


def slack_incident_channel_open(*, incident_id: int) -> SlackChannel | None:
    """Create the incident's channel (once), post its summary with a link, invite the commander when
    they are mapped to a Slack user, then post the timeline so far. None when Slack is off.

    Raises SlackUnavailable (retry) or SlackRefused (given up; the delivery says why)."""
    if not slack_enabled():
        return None
    incident = Incident.objects.select_related("commander", "failure_class").get(pk=incident_id)
    channel = SlackChannel.objects.filter(incident=incident).first() or _channel_create(incident)
    if not channel.summary_ts:
        text, blocks = messages.incident_summary(incident)
        delivery = _delivery(target=channel.channel_id, event="incident.declared", incident=incident)
        try:
            data = _send(delivery, "chat_postMessage", channel=channel.channel_id, text=text, blocks=blocks)
            channel.summary_ts = str(data.get("ts") or "-")
        except SlackRefused:
            channel.summary_ts = "-"  # given up (the delivery says why): the timeline still goes out
        SlackChannel.objects.filter(pk=channel.pk).update(summary_ts=channel.summary_ts)
    mapped = SlackUser.objects.filter(user=incident.commander).order_by("pk").first() if incident.commander else None
    if mapped is not None and not channel.commander_invited:
        delivery = _delivery(
            target=channel.channel_id,
            event="incident.commander_invited",
            incident=incident,
            detail={"slack_user": mapped.slack_user_id},
        )
        # Refused (already in the channel, deactivated): the channel stands; the delivery says why.
        with contextlib.suppress(SlackRefused):
            _send(delivery, "conversations_invite", channel=channel.channel_id, users=mapped.slack_user_id)
        SlackChannel.objects.filter(pk=channel.pk).update(commander_invited=True)
    slack_timeline_flush(incident_id=incident.pk)
    return channel


def slack_timeline_flush(*, incident_id: int) -> int:
    """Post every timeline entry not yet posted in the incident's channel, oldest first; how many.

    A Redis lock per incident keeps two workers from posting one entry twice; the mark moves after
    each post (each delivery its own transaction), so a retry resumes where the last attempt stopped.
    Raises SlackUnavailable when another worker holds the lock too long (retry: nothing is lost)."""
    if not slack_enabled():
        return 0
    if not SlackChannel.objects.filter(incident_id=incident_id).exclude(summary_ts="").exists():
        return 0  # the channel task posts the whole timeline once the channel and its summary exist
    lock = get_redis().lock(f"{LOCK_PREFIX}{incident_id}", timeout=120, blocking_timeout=15)
    if not lock.acquire():
        raise SlackUnavailable("another worker is posting this incident's timeline")
    try:
        channel = SlackChannel.objects.select_related("incident").get(incident_id=incident_id)
        entries = TimelineEntry.objects.filter(incident_id=incident_id, pk__gt=channel.posted_through).order_by("pk")
        posted = 0
        for entry in entries:
            text, blocks = messages.timeline_entry(entry)
            delivery = _delivery(
                target=channel.channel_id,
                event=f"timeline.{entry.kind}",
                incident=channel.incident,
                detail={"entry": entry.pk},
            )
            try:
                _send(delivery, "chat_postMessage", channel=channel.channel_id, text=text, blocks=blocks)
                posted += 1
            except SlackRefused:
                pass  # this entry is given up (its delivery says why); the next ones still go out
            SlackChannel.objects.filter(pk=channel.pk).update(posted_through=entry.pk)
        return posted
    finally:
        try:
            lock.release()
        except LockError:
            logger.warning("the Slack timeline lock of incident %s expired while posting", incident_id)


# --- outbound: alerts with buttons -------------------------------------------------------------------


def slack_alert_post(*, alert_id: int) -> SlackAlertMessage | None:
    """Post the alert with Kill / Pause / Acknowledge to ``FIREBREAK_SLACK_ALERTS_CHANNEL``; when it
    was posted before (a reopened alert), update that message instead. None when Slack or the alerts
    channel is off."""
    target = settings.FIREBREAK_SLACK_ALERTS_CHANNEL
    if not slack_enabled() or not target:
        return None
    existing = SlackAlertMessage.objects.filter(alert_id=alert_id).first()
    if existing is not None:
        slack_alert_update(alert_id=alert_id)
        return existing
    alert = Alert.objects.select_related("agent").get(pk=alert_id)
    text, blocks = messages.alert_message(alert)
    delivery = _delivery(target=target, event="alert.raised", alert=alert)
    data = _send(delivery, "chat_postMessage", channel=target, text=text, blocks=blocks)
    message, _ = SlackAlertMessage.objects.update_or_create(
        alert=alert, defaults={"channel_id": str(data.get("channel") or target), "ts": str(data["ts"])}
    )
    return message


def slack_alert_update(*, alert_id: int, event: str = "") -> bool:
    """Rewrite the alert's message as the alert and its agent stand now (buttons gone once they no
    longer apply). False when the alert was never posted or Slack is off."""
    if not slack_enabled():
        return False
    message = SlackAlertMessage.objects.select_related("alert__agent").filter(alert_id=alert_id).first()
    if message is None:
        return False
    alert = message.alert
    text, blocks = messages.alert_message(alert)
    delivery = _delivery(
        target=message.channel_id, event=event or f"alert.{alert.status}", alert=alert, detail={"ts": message.ts}
    )
    _send(delivery, "chat_update", channel=message.channel_id, ts=message.ts, text=text, blocks=blocks)
    return True


def slack_alert_ids_for_agent(*, agent_id: int) -> list[int]:
    """The agent's alerts that have a message in Slack and are not resolved (to update on a gate change)."""
    return list(
        SlackAlertMessage.objects.filter(alert__agent_id=agent_id)
        .exclude(alert__status=Alert.Status.RESOLVED)
        .values_list("alert_id", flat=True)
    )


def slack_respond(*, response_url: str, text: str) -> bool:
    """An ephemeral reply to whoever pressed a button, through the request's ``response_url``; only to
    the URL prefixes of ``FIREBREAK_SLACK_RESPONSE_URL_PREFIXES`` (Slack's hooks host by default)."""
    if not response_url_allowed(response_url):
        logger.warning("Slack response_url refused: not under FIREBREAK_SLACK_RESPONSE_URL_PREFIXES")
        return False
    try:
        response = WebhookClient(response_url, timeout=TIMEOUT).send(
            text=text, response_type="ephemeral", replace_original=False
        )
    except (SlackClientError, urllib.error.URLError, OSError) as exc:
        raise SlackUnavailable(f"Slack unreachable: {type(exc).__name__}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise SlackUnavailable(f"Slack answered {response.status_code}")
    return response.status_code == 200


def response_url_allowed(url: str) -> bool:
    return any(url.startswith(prefix) for prefix in settings.FIREBREAK_SLACK_RESPONSE_URL_PREFIXES if prefix)


# --- inbound: who is acting ----------------------------------------------------------------------------


class SlackUserUnknown(Exception):
    """The Slack member maps to no Firebreak user; the message says what to do."""


def slack_user_resolve(*, slack_user_id: str, team_id: str = "") -> Any:
    """The Firebreak user a Slack member acts as: the admin's mapping (``SlackUser``), else the one
    active user whose e-mail equals the member's Slack e-mail (``users.info``; the mapping is then
    kept). Raises SlackUserUnknown with a message for the member."""
    mapped = SlackUser.objects.select_related("user").filter(slack_user_id=slack_user_id).first()
    if mapped is not None:
        if not mapped.user.is_active:
            raise SlackUserUnknown("Your Firebreak account is deactivated.")
        return mapped.user
    unknown = SlackUserUnknown(
        f"Your Slack account ({slack_user_id}) is not linked to a Firebreak user: ask a Firebreak admin to "
        "add it under Admin → Slack users, or use the same e-mail address in both."
    )
    if not slack_enabled():
        raise unknown
    try:
        data = _call("users_info", user=slack_user_id, _timeout=INLINE_TIMEOUT)
    except SlackUnavailable as exc:
        raise SlackUserUnknown("Firebreak could not look you up in Slack just now; try again in a minute.") from exc
    except SlackRefused as exc:
        raise unknown from exc
    email = str(((data.get("user") or {}).get("profile") or {}).get("email") or "").strip()
    if not email:
        raise unknown
    users = list(get_user_model().objects.filter(email__iexact=email, is_active=True)[:2])
    if len(users) != 1:
        raise unknown
    try:
        with transaction.atomic():
            SlackUser.objects.create(slack_user_id=slack_user_id, team_id=team_id, user=users[0], linked_by="email")
    except IntegrityError:
        pass  # linked meanwhile by a parallel request
    return users[0]


# --- inbound: buttons ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What to tell the member who acted (ephemeral) and whether anything changed."""

    text: str
    done: bool


def _name(user: Any) -> str:
    return messages.escape(user.get_username())


def _actor(user: Any) -> Actor:
    return Actor.person(user)


def slack_button_press(*, slack_user_id: str, team_id: str, action_id: str, value: dict[str, Any]) -> Reply:
    """Kill, pause or acknowledge from an alert's buttons, as the member's Firebreak user (responder
    or admin), through the gate's and alerts' own services (audited as usual). A refusal changes
    nothing and says why."""
    try:
        user = slack_user_resolve(slack_user_id=slack_user_id, team_id=team_id)
    except SlackUserUnknown as exc:
        return Reply(str(exc), False)
    if not has_role(user, RESPONDER):
        return Reply(f"You are {_name(user)} in Firebreak, a viewer: this needs the responder role.", False)
    alert_id = value.get("alert")
    alert = Alert.objects.select_related("agent").filter(pk=alert_id).first() if isinstance(alert_id, int) else None
    if alert is None or (alert.agent.slug if alert.agent is not None else None) != value.get("agent"):
        return Reply("That alert is no longer in Firebreak.", False)
    actor = _actor(user)
    agent = alert.agent
    if agent is None and action_id in (messages.ACTION_KILL, messages.ACTION_PAUSE):
        return Reply("This alert names no Firebreak agent: there is nothing to stop.", False)
    try:
        if action_id == messages.ACTION_KILL and agent is not None:
            entry = agent_kill(agent=agent, actor=actor, reason=f"From Slack, alert: {alert.title}"[:500])
            return Reply(f"Killed {agent.slug}." if entry else f"{agent.slug} was already killed.", entry is not None)
        if action_id == messages.ACTION_PAUSE and agent is not None:
            entry = agent_pause(agent=agent, actor=actor, reason=f"From Slack, alert: {alert.title}"[:500])
            return Reply(f"Paused {agent.slug}." if entry else f"{agent.slug} was already paused.", entry is not None)
        if action_id == messages.ACTION_ACK:
            alert_acknowledge(alert=alert, actor=actor)
            return Reply(f"Acknowledged: {alert.title}", True)
    except (ValidationError, PermissionDenied) as exc:
        return Reply(_refusal(exc), False)
    return Reply(f"Unknown action {action_id[:40]!r}.", False)


# --- inbound: /firebreak ---------------------------------------------------------------------------------

HELP = (
    "*/firebreak* commands:\n"
    "• `declare SEV1|SEV2|SEV3 &lt;title&gt;` — declare an incident (you are its commander)\n"
    "• `kill &lt;agent&gt; &lt;reason&gt;` — kill an agent now\n"
    "• `pause &lt;agent&gt; &lt;reason&gt;` — pause an agent\n"
    "• `status` — open incidents and stopped agents\n"
    "• `help` — this list"
)


def _status_text() -> str:
    incidents = list(Incident.objects.filter(status__in=OPEN_STATUSES).order_by("-declared_at")[:10])
    stopped = list(Agent.objects.exclude(state=GateState.ACTIVE).order_by("slug")[:20])
    lines = [f"*Open incidents:* {len(incidents) or 'none'}"]
    for inc in incidents:
        url = messages.absolute_url(f"/incidents/{inc.number}/")
        lines.append(
            f"• <{url}|INC-{inc.number}> {inc.severity} · {messages.escape(inc.get_status_display())} · "
            f"{messages.escape(inc.title)}"
        )
    lines.append(f"*Stopped agents:* {len(stopped) or 'none'}")
    lines.extend(f"• `{messages.escape(a.slug)}` {a.get_state_display().lower()}" for a in stopped)
    return "\n".join(lines)


def slack_command_run(*, slack_user_id: str, team_id: str, text: str) -> Reply:
    """Run ``/firebreak <text>`` as the member's Firebreak user. ``help`` and ``status`` need a linked
    account (any role); ``declare``, ``kill`` and ``pause`` the responder role."""
    words = text.strip().split(None, 1)
    verb = words[0].lower() if words else "help"
    rest = words[1] if len(words) > 1 else ""
    if verb == "help":
        return Reply(HELP, True)
    if verb not in {"status", "declare", "kill", "pause"}:
        return Reply(f"Unknown command `{messages.escape(verb[:40])}`.\n{HELP}", False)
    try:
        user = slack_user_resolve(slack_user_id=slack_user_id, team_id=team_id)
    except SlackUserUnknown as exc:
        return Reply(str(exc), False)
    if verb == "status":
        return Reply(_status_text(), True)
    if not has_role(user, RESPONDER):
        return Reply(f"You are {_name(user)} in Firebreak, a viewer: `{verb}` needs the responder role.", False)
    actor = _actor(user)
    if verb == "declare":
        parts = rest.split(None, 1)
        severity = parts[0].upper() if parts else ""
        title = parts[1].strip() if len(parts) > 1 else ""
        if severity not in {"SEV1", "SEV2", "SEV3"}:
            return Reply(
                "severity: give SEV1, SEV2 or SEV3 first, e.g. `/firebreak declare SEV2 Refund agent loops`.", False
            )
        try:
            incident = incident_declare(title=title, severity=severity, actor=actor)
        except (ValidationError, PermissionDenied) as exc:
            return Reply(_refusal(exc), False)
        url = messages.absolute_url(f"/incidents/{incident.number}/")
        return Reply(f"Declared <{url}|INC-{incident.number}> {severity}: {messages.escape(incident.title)}", True)
    parts = rest.split(None, 1)
    slug = parts[0] if parts else ""
    reason = parts[1].strip() if len(parts) > 1 else ""
    agent = Agent.objects.filter(slug=slug).first() if slug else None
    if agent is None:
        return Reply(
            f"agent: no agent `{messages.escape(slug[:63])}`; `/firebreak {verb} &lt;agent&gt; &lt;reason&gt;`.", False
        )
    if not reason:
        return Reply(f"reason: say why, e.g. `/firebreak {verb} {messages.escape(slug)} loops on refunds`.", False)
    try:
        change = agent_kill if verb == "kill" else agent_pause
        entry = change(agent=agent, actor=actor, reason=reason)
    except (ValidationError, PermissionDenied) as exc:
        return Reply(_refusal(exc), False)
    done = "Killed" if verb == "kill" else "Paused"
    if entry is None:
        return Reply(f"`{messages.escape(slug)}` was already {'killed' if verb == 'kill' else 'paused'}.", False)
    return Reply(f"{done} `{messages.escape(slug)}`: {messages.escape(reason)}", True)


def _refusal(exc: Exception) -> str:
    """A service's refusal in words, each message after the field it names (``title: …``)."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        text = " ".join(f"{field}: {m}" for field, ms in exc.message_dict.items() for m in ms)
    elif isinstance(exc, ValidationError):
        text = " ".join(error_messages(exc))
    else:
        text = str(exc) or "not allowed"
    return messages.escape(text)
