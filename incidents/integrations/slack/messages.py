"""What Firebreak says in Slack: channel names, mrkdwn and Block Kit, built from the models.

Pure functions, no I/O. Everything that came from outside (titles, timeline bodies, agent output,
usernames) goes through :func:`escape` before it is put into mrkdwn or a message's ``text`` (which
Slack formats too), so it cannot mention @channel, forge a link or break the formatting.
"""

import json
import re
from typing import Any

from django.conf import settings
from django.urls import reverse

from incidents.models import Alert, Incident, TimelineEntry

CHANNEL_NAME_MAX = 80
SECTION_TEXT_MAX = 3000  # Block Kit: a section's text is at most 3,000 characters
FALLBACK_TEXT_MAX = 4000

ACTION_KILL = "firebreak_kill"
ACTION_PAUSE = "firebreak_pause"
ACTION_ACK = "firebreak_ack"
ACTIONS = (ACTION_KILL, ACTION_PAUSE, ACTION_ACK)

Blocks = list[dict[str, Any]]


def escape(text: str) -> str:
    """Slack's three control characters as its documented entities (``&``, ``<``, ``>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _link(url: str, label: str) -> str:
    return f"<{url}|{escape(label)}>"


def absolute_url(path: str) -> str:
    return settings.FIREBREAK_BASE_URL.rstrip("/") + path


def channel_name(incident: Incident, suffix: int = 0) -> str:
    """``inc-42-refund-agent-loops``: lower case, letters, digits and hyphens, at most 80 characters;
    ``suffix`` (2, 3…) keeps it unique when the name is taken."""
    slug = re.sub(r"[^a-z0-9]+", "-", incident.title.lower()).strip("-")
    base = f"inc-{incident.number}" + (f"-{slug}" if slug else "")
    tail = f"-{suffix}" if suffix else ""
    return base[: CHANNEL_NAME_MAX - len(tail)].rstrip("-") + tail


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SECTION_TEXT_MAX)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, SECTION_TEXT_MAX)}]}


def incident_summary(incident: Incident) -> tuple[str, Blocks]:
    """The first message in the incident's channel: what, how bad, who leads, where to work it."""
    url = absolute_url(reverse("incidents:incident-detail", args=[incident.number]))
    title = escape(incident.title)
    klass = escape(incident.failure_class.name) if incident.failure_class else "not yet classified"
    commander = escape(incident.commander.get_username()) if incident.commander else "nobody yet"
    linked = list(incident.agents.all())
    agents = ", ".join(escape(a.slug) for a in linked) or "none linked yet"
    drill = "[DRILL] " if any(a.is_drill for a in linked) else ""
    text = f"{drill}INC-{incident.number} {incident.severity}: {title}"
    blocks: Blocks = [
        _section(
            f":rotating_light: {drill}*INC-{incident.number} · {incident.severity}* — {_link(url, incident.title)}"
        ),
        _section(
            f"*Status:* {escape(incident.get_status_display())}\n*Failure class:* {klass}\n"
            f"*Commander:* {commander}\n*Agents:* {agents}"
        ),
    ]
    if incident.summary:
        blocks.append(_section(escape(incident.summary)))
    blocks.append(_context(f"Open in Firebreak: {_link(url, f'INC-{incident.number}')} · {title}"))
    return _clip(text, FALLBACK_TEXT_MAX), blocks


def timeline_entry(entry: TimelineEntry) -> tuple[str, Blocks]:
    """One timeline entry as a message: when, what kind, who, and the body as escaped text."""
    when = entry.created_at.strftime("%H:%M:%S UTC")
    who = escape(entry.actor_label or "firebreak")
    kind = escape(entry.get_kind_display())
    body = escape(entry.body)
    text = f"{when} {kind} · {who}: {body}"
    blocks: Blocks = [_context(f"*{kind}* · {who} · {when}"), _section(body or "_(no text)_")]
    return _clip(text, FALLBACK_TEXT_MAX), blocks


def button_value(alert: Alert) -> str:
    agent = alert.agent.slug if alert.agent is not None else None
    return json.dumps({"alert": alert.pk, "agent": agent}, separators=(",", ":"))


def alert_message(alert: Alert) -> tuple[str, Blocks]:
    """An alert in the alerts channel. While it is open and its agent runs, it carries Kill / Pause /
    Acknowledge buttons; afterwards it says what happened instead."""
    agent = alert.agent
    url = absolute_url(reverse("incidents:alert-list")) + (f"?agent={agent.slug}" if agent is not None else "")
    if agent is not None:
        agent_url = absolute_url(reverse("agents:agent-detail", args=[agent.slug]))
        on, agent_line = (
            f"agent {agent.slug}",
            (f"*Agent:* {_link(agent_url, agent.slug)} ({escape(agent.get_state_display().lower())})"),
        )
    else:  # an alert from outside (Alertmanager, Grafana…) that names no Firebreak agent: nothing to stop
        on = f"from {alert.source or 'outside'}"
        agent_line = f"*Source:* {escape(alert.source or 'outside')} (no Firebreak agent named)"
    drill = "[DRILL] " if agent is not None and agent.is_drill else ""
    text = escape(f"{drill}[{alert.suggested_severity}] {alert.title} · {on} · {alert.get_status_display()}")
    blocks: Blocks = [
        _section(
            f":warning: {drill}*{escape(alert.title)}*\n{_link(url, 'Alert')} · detector `{escape(alert.detector)}`"
        ),
        _section(
            f"{agent_line}\n"
            f"*Suggested:* {alert.suggested_severity} · *Status:* {escape(alert.get_status_display())}"
            + (f" by {escape(alert.handled_by)}" if alert.handled_by else "")
        ),
    ]
    value = button_value(alert)
    buttons: list[dict[str, Any]] = []
    if agent is not None and agent.state not in ("killed",):
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Kill"},
                "action_id": ACTION_KILL,
                "value": value,
                "style": "danger",
                "confirm": {
                    "title": {"type": "plain_text", "text": "Kill the agent?"},
                    "text": {"type": "mrkdwn", "text": f"`{escape(agent.slug)}` stops at its next gate check."},
                    "confirm": {"type": "plain_text", "text": "Kill"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            }
        )
    if agent is not None and agent.state == "active":
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Pause"},
                "action_id": ACTION_PAUSE,
                "value": value,
            }
        )
    if alert.status == Alert.Status.OPEN:
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "action_id": ACTION_ACK,
                "value": value,
                "style": "primary",
            }
        )
    if buttons and alert.status != Alert.Status.RESOLVED:
        blocks.append({"type": "actions", "block_id": f"alert-{alert.pk}", "elements": buttons})
    return _clip(text, FALLBACK_TEXT_MAX), blocks
