"""What a notification says: a title and a plain-text body with the link to the page, for each kind of
event (alert, gate change, incident, overdue post-mortem), and what routes filter on (agents, severity).
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse

from agents.models import Agent, AuditAction
from incidents.detection.base import registry
from incidents.detection.engine import detector_settings
from incidents.models import Alert, DetectorSetting, Incident, IncidentStatus

# Apprise's notify types: how a chat client colours the message.
INFO, SUCCESS, WARNING, FAILURE = "info", "success", "warning", "failure"

ALERT_EVENTS = ("raised", "reopened")
# Gate changes worth telling people about: the ones that stop, restrict or restart an agent.
GATE_ACTIONS = {
    AuditAction.KILL: FAILURE,
    AuditAction.PAUSE: WARNING,
    AuditAction.RESUME: SUCCESS,
    AuditAction.FLEET_STOP: FAILURE,
    AuditAction.FLEET_RESUME: SUCCESS,
    AuditAction.TOOL_DISABLE: WARNING,
    AuditAction.TOOL_ENABLE: INFO,
    AuditAction.BUDGET_FREEZE: WARNING,
    AuditAction.BUDGET_UNFREEZE: INFO,
}
INCIDENT_EVENTS = {"declared": "declared", "severity": "severity changed"}


@dataclass
class Notice:
    """One event to tell the routes about."""

    kind: str  # alert | gate | incident | postmortem: what a route's "events" filter names
    event: str  # the delivery log's event: alert.raised, gate.kill, incident.declared, postmortem.overdue
    title: str
    body: str
    notify_type: str = INFO
    severity: str = ""
    agents: list[str] = field(default_factory=list)
    alert: Alert | None = None
    incident: Incident | None = None
    agent: Agent | None = None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
TEXT_MAX = 300


def _plain(value: object, limit: int = TEXT_MAX) -> str:
    """Untrusted text (a detector's or an outside source's title, a reason, a tool name) for one line of a
    message: no line breaks (it cannot forge a line such as a link), no Markdown link or HTML tag for
    the targets that render them (Teams, Slack), at most ``limit`` characters."""
    text = " ".join(_CONTROL.sub(" ", str(value)).split())
    text = text.replace("](", "] (").replace("<", "‹").replace(">", "›")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _url(path: str, query: dict[str, str] | None = None, fragment: str = "") -> str:
    url = settings.FIREBREAK_BASE_URL.rstrip("/") + path
    if query:
        url += "?" + urlencode(query)
    return url + (f"#{fragment}" if fragment else "")


def _rule_label(alert: Alert) -> str:
    if alert.detector not in registry:  # an alert from outside (Alertmanager, a webhook): no rule here
        return ""
    _, _, rule = detector_settings(alert.detector, alert.agent)
    return DetectorSetting.Rule(rule).label if rule in DetectorSetting.Rule.values else rule


def _drill(title: str, drill: bool) -> str:
    """A gameday's drill says so first, so nobody takes practice for a real fire."""
    return f"[DRILL] {title}" if drill else title


def alert_notice(*, alert: Alert, event: str) -> Notice:
    """An alert raised or reopened: detector, agent, count, rule, the trajectory at the step and the alerts page."""
    verb = "reopened" if event == "reopened" else "raised"
    subject = alert.agent.slug if alert.agent is not None else _plain(alert.source or "outside")
    on = f"agent {alert.agent.slug}" if alert.agent is not None else f"{subject} (no Firebreak agent named)"
    title = f"[{alert.suggested_severity}] Alert {verb}: {_plain(alert.title)} ({subject})"
    title = _drill(title, alert.agent is not None and alert.agent.is_drill)
    lines = [f"Detector {_plain(alert.detector, 100)} on {on}, seen {alert.count}×."]
    rule = _rule_label(alert)
    if rule:
        lines.append(f"Rule: {rule}.")
    if alert.incident is not None:
        lines.append(
            f"Incident {alert.incident.ref}: {_url(reverse('incidents:incident-detail', args=[alert.incident.number]))}"
        )
    if alert.trace is not None and alert.agent is not None:
        query = {"agent": alert.agent.slug}
        if alert.span_id:
            query["at"] = alert.span_id
        fragment = f"step-{alert.span_id}" if alert.span_id else ""
        lines.append(
            f"Trajectory: {_url(reverse('traces:trace-detail', args=[alert.trace.trace_id]), query, fragment)}"
        )
    if alert.source_url:
        lines.append(f"Source: {_plain(alert.source_url, 500)}")
    listing = {"agent": alert.agent.slug} if alert.agent is not None else {}
    lines.append(f"Alerts: {_url(reverse('incidents:alert-list'), listing)}")
    return Notice(
        kind="alert",
        event=f"alert.{verb}",
        title=title,
        body="\n".join(lines),
        notify_type=FAILURE if alert.suggested_severity == "SEV1" else WARNING,
        severity=alert.suggested_severity,
        agents=[alert.agent.slug] if alert.agent is not None else [],
        alert=alert,
        agent=alert.agent,
    )


def gate_notice(
    *, agent: Agent, action: str, actor_label: str, reason: str, incident: Incident | None, tool: str = ""
) -> Notice:
    """A gate change: what, on which agent, who and why, and the agent's page."""
    label = AuditAction(action).label
    what = f"{label} ({_plain(tool, 128)})" if tool else label
    who = _plain(actor_label, 200)
    title = _drill(f"{agent.slug} — {what} by {who}", agent.is_drill)
    lines = [f"{what} on {agent.slug} by {who}.", f"Why: {_plain(reason, 1000) or 'no reason given'}"]
    if incident is not None:
        lines.append(f"Incident {incident.ref}: {_url(reverse('incidents:incident-detail', args=[incident.number]))}")
    lines.append(f"Agent: {_url(reverse('agents:agent-detail', args=[agent.slug]))}")
    return Notice(
        kind="gate",
        event=f"gate.{action}",
        title=title,
        body="\n".join(lines),
        notify_type=GATE_ACTIONS.get(AuditAction(action), INFO),
        severity=incident.severity if incident is not None else "",
        agents=[agent.slug],
        incident=incident,
        agent=agent,
    )


def incident_notice(*, incident: Incident, event: str, detail: str = "") -> Notice:
    """An incident declared, its severity changed, its status moved: title, class, status, commander, link."""
    label = INCIDENT_EVENTS.get(event) or (
        IncidentStatus(event).label.lower() if event in IncidentStatus.values else event
    )
    if detail:
        label = f"{label} ({_plain(detail, 200)})"
    title = f"{incident.ref} [{incident.severity}] {_plain(incident.title)} — {label}"
    fc_name = incident.failure_class.name if incident.failure_class else "Not yet classified"
    lines = [f"{fc_name} · {incident.get_status_display()}"]
    if incident.commander is not None:  # no query when commander_id is empty
        lines.append(f"Commander: {incident.commander.get_username()}")
    incident_agents = list(incident.agents.all())
    agents = [a.slug for a in incident_agents]
    title = _drill(title, any(a.is_drill for a in incident_agents))
    if agents:
        lines.append(f"Agents: {', '.join(agents)}")
    lines.append(_url(reverse("incidents:incident-detail", args=[incident.number])))
    if event in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED, IncidentStatus.CONTAINED):
        notify_type = SUCCESS
    else:
        notify_type = FAILURE if incident.severity == "SEV1" else WARNING
    return Notice(
        kind="incident",
        event=f"incident.{event}",
        title=title,
        body="\n".join(lines),
        notify_type=notify_type,
        severity=incident.severity,
        agents=agents,
        incident=incident,
    )


def postmortem_overdue_notice(*, incident: Incident, due_at: datetime, status: str) -> Notice:
    """A post-mortem past its due date (or never started past the severity's deadline)."""
    title = f"{incident.ref} [{incident.severity}] post-mortem overdue — {_plain(incident.title)}"
    lines = [
        f"Due {due_at:%Y-%m-%d %H:%M} UTC; it is {status.lower()}.",
        _url(reverse("incidents:postmortem", args=[incident.number])),
    ]
    return Notice(
        kind="postmortem",
        event="postmortem.overdue",
        title=title,
        body="\n".join(lines),
        notify_type=WARNING,
        severity=incident.severity,
        agents=[a.slug for a in incident.agents.all()],
        incident=incident,
    )
