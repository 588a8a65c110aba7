"""The Events API v2 on the wire: the body of one event and what PagerDuty's answer means.

https://developer.pagerduty.com/docs/events-API-v2/02-Trigger-Events — ``routing_key``, ``event_action``
(trigger, acknowledge, resolve), ``dedup_key`` (≤ 255), ``payload`` {summary ≤ 1024, source, severity
critical|error|warning|info, timestamp, component, group, class, custom_details}, ``links``, ``client``,
``client_url``. Answers: 202 accepted (with the dedup_key), 400 invalid (never retried), 429 and 5xx
retryable. httpx rather than the ``pagerduty`` package: its client retries on its own, and each attempt
here must be one row of the delivery log with the task's backoff and PagerDuty's Retry-After.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255
CLIENT = "Firebreak"
RETRY_AFTER_MAX = 300.0  # seconds; a longer Retry-After is capped so a page is never parked for long


@dataclass(frozen=True)
class Trigger:
    """What a trigger says about the problem (acknowledge and resolve need only the dedup_key)."""

    summary: str
    source: str
    severity: str
    timestamp: datetime
    component: str = ""
    group: str = ""
    event_class: str = ""
    custom_details: dict[str, Any] | None = None
    link: str = ""
    link_text: str = ""


@dataclass(frozen=True)
class Answer:
    """PagerDuty's answer to one event. ``retryable``: 429, 5xx or no answer at all."""

    accepted: bool
    retryable: bool
    status: int | None
    message: str
    dedup_key: str = ""
    retry_after: float | None = None


def event_body(*, routing_key: str, event_action: str, dedup_key: str, trigger: Trigger | None = None,
               client_url: str = "") -> dict[str, Any]:  # fmt: skip
    """The JSON body of one event. Raises ValueError for an action or severity PagerDuty would refuse."""
    if event_action not in ACTIONS:
        raise ValueError(f"event_action must be one of {', '.join(ACTIONS)}")
    if not dedup_key or len(dedup_key) > DEDUP_KEY_MAX:
        raise ValueError(f"dedup_key must be 1 to {DEDUP_KEY_MAX} characters")
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": event_action, "dedup_key": dedup_key}
    if event_action != "trigger":
        return body
    if trigger is None:
        raise ValueError("a trigger needs its summary, source and severity")
    if trigger.severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
    summary = " ".join(trigger.summary.split()) or "Firebreak alert"
    if len(summary) > SUMMARY_MAX:
        summary = summary[: SUMMARY_MAX - 1] + "…"
    payload: dict[str, Any] = {
        "summary": summary,
        "source": trigger.source or CLIENT.lower(),
        "severity": trigger.severity,
        "timestamp": trigger.timestamp.isoformat(),
    }
    for key, value in (("component", trigger.component), ("group", trigger.group), ("class", trigger.event_class)):
        if value:
            payload[key] = value
    if trigger.custom_details:
        payload["custom_details"] = trigger.custom_details
    body["payload"] = payload
    body["client"] = CLIENT
    if client_url:
        body["client_url"] = client_url
    if trigger.link:
        body["links"] = [{"href": trigger.link, "text": trigger.link_text or trigger.link}]
    return body


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date, or nothing: the task's own backoff applies
    return max(0.0, min(seconds, RETRY_AFTER_MAX))


def _message(response: httpx.Response) -> tuple[str, str]:
    """(message, dedup_key) from PagerDuty's JSON answer, or the start of whatever it sent."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300].strip(), ""
    if not isinstance(data, dict):
        return str(data)[:300], ""
    parts = [str(data.get("message") or data.get("status") or "")]
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        parts.append("; ".join(str(e) for e in errors[:5]))
    return ": ".join(p for p in parts if p)[:500], str(data.get("dedup_key") or "")


def event_send(*, url: str, body: dict[str, Any], timeout: float) -> Answer:
    """POST one event. Never raises for what the network or PagerDuty does: the Answer says it."""
    try:
        response = httpx.post(url, json=body, timeout=timeout, headers={"User-Agent": "Firebreak"})
    except httpx.HTTPError as exc:
        return Answer(False, True, None, f"no answer from PagerDuty ({type(exc).__name__}: {exc})"[:500])
    message, dedup_key = _message(response)
    code = response.status_code
    if code == 202 or 200 <= code < 300:
        return Answer(True, False, code, message or "accepted", dedup_key)
    retryable = code == 429 or code >= 500
    return Answer(False, retryable, code, f"PagerDuty answered {code}: {message or response.reason_phrase}"[:500],
                  retry_after=_retry_after(response) if retryable else None)  # fmt: skip
