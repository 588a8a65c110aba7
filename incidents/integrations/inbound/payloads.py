"""What each monitoring tool posts, validated and read into one shape (``InboundAlert``).

Every value here comes from outside and is untrusted: it is validated for shape (a 400 naming the field),
stored as text, and escaped wherever it is shown. Links are kept only when they are http(s) URLs.

- Alertmanager: the webhook receiver's payload, ``"version": "4"``
  (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config).
- Grafana: the webhook contact point's payload (Grafana Alerting, "Configure the webhook notifier").
- Datadog: the Webhooks integration posts the payload you write; Firebreak reads the template in
  ``DATADOG_TEMPLATE`` (README, "Alerts from your monitoring").
- Any other tool: a generic JSON body and a mapping, in the query string, of JSON paths to the fields
  (``?title=$.alert.name&status=$.state&fingerprint=$.id``).
"""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from rest_framework import serializers

TEXT_MAX = 2000  # one label, annotation or template value
TITLE_MAX = 300  # Alert.title
URL_MAX = 2000  # Alert.source_url

# The labels (tags, for Datadog) that name the agent an alert is about, first found wins.
AGENT_LABELS = ("firebreak_agent", "agent", "service")

# Severity from a ``severity`` label (or Datadog's priority): documented in the README.
SEVERITIES = {
    "critical": "SEV1",
    "page": "SEV1",
    "p1": "SEV1",
    "error": "SEV2",
    "warning": "SEV2",
    "high": "SEV2",
    "p2": "SEV2",
    "info": "SEV3",
    "low": "SEV3",
    "p3": "SEV3",
    "p4": "SEV3",
    "p5": "SEV3",
}
DEFAULT_SEVERITY = "SEV2"

# Words a generic webhook's status may use for "this has cleared"; anything else is firing.
RESOLVED_WORDS = {"resolved", "ok", "recovered", "closed", "inactive", "normal", "cleared"}

# The Datadog Webhooks integration payload to paste into the webhook's "Payload" field.
DATADOG_TEMPLATE = {
    "id": "$ID",
    "alert_id": "$ALERT_ID",
    "aggregate": "$AGGREG_KEY",
    "transition": "$ALERT_TRANSITION",
    "title": "$ALERT_TITLE",
    "body": "$EVENT_MSG",
    "tags": "$TAGS",
    "scope": "$ALERT_SCOPE",
    "link": "$LINK",
    "priority": "$ALERT_PRIORITY",
}
DATADOG_RESOLVED = {"recovered"}  # $ALERT_TRANSITION: Triggered, Re-Triggered, Warn, No Data, Recovered…


@dataclass
class InboundAlert:
    """One alert as the source sent it, in Firebreak's terms."""

    fingerprint: str  # the source's own identity of the alert (not yet namespaced)
    title: str
    firing: bool
    labels: dict[str, str] = field(default_factory=dict)
    severity: str = DEFAULT_SEVERITY
    link: str = ""
    agent_names: list[str] = field(default_factory=list)  # candidate agent slugs, first registered one wins
    details: dict[str, Any] = field(default_factory=dict)


def safe_link(value: object) -> str:
    """An http(s) URL, or "": a ``javascript:`` or other scheme from outside never becomes a link."""
    if not isinstance(value, str) or not value or len(value) > URL_MAX:
        return ""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return ""
    return value.strip() if parts.scheme in ("http", "https") and parts.netloc else ""


def severity_of(*values: str) -> str:
    """The first value that names a severity (``critical``, ``warning``, ``P1``…), else SEV2."""
    for value in values:
        found = SEVERITIES.get(value.strip().lower()) if value else None
        if found:
            return found
    return DEFAULT_SEVERITY


def _agent_names(labels: Mapping[str, str]) -> list[str]:
    return [labels[name].strip() for name in AGENT_LABELS if labels.get(name, "").strip()]


def _labels_fingerprint(labels: Mapping[str, str]) -> str:
    """The source gave no fingerprint: the alert is its labels (what Alertmanager hashes too)."""
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:32]


def _errors(serializer: serializers.Serializer) -> ValidationError:
    return ValidationError(_flatten(serializer.errors))


def _flatten(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as ``{"alerts[0].status": ["..."]}``: each message names its field."""
    out: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(key, int):
                name = f"{prefix}[{key}]"
            out.update(_flatten(value, name))
    elif isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
        out[prefix or "body"] = [str(e) for e in errors]
    elif isinstance(errors, list):
        for i, value in enumerate(errors):
            if value:
                out.update(_flatten(value, f"{prefix}[{i}]"))
    else:
        out[prefix or "body"] = [str(errors)]
    return out


class _Text(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("max_length", TEXT_MAX)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)


def _string_map(**kwargs: Any) -> serializers.DictField:
    return serializers.DictField(child=_Text(), **kwargs)


class AlertmanagerAlert(serializers.Serializer):
    """One alert of the batch. The serializers keep the vendors' own (camelCase) field names."""

    status = serializers.ChoiceField(choices=["firing", "resolved"])
    labels = _string_map()
    annotations = _string_map(required=False, default=dict)
    startsAt = _Text(required=False)
    endsAt = _Text(required=False)
    generatorURL = _Text(required=False)
    fingerprint = _Text(required=False, max_length=200)


class AlertmanagerPayload(serializers.Serializer):
    version = serializers.ChoiceField(choices=["4"])
    status = serializers.ChoiceField(choices=["firing", "resolved"])
    receiver = _Text()
    alerts = serializers.ListField(child=AlertmanagerAlert(), allow_empty=False)
    groupLabels = _string_map(required=False, default=dict)
    commonLabels = _string_map(required=False, default=dict)
    commonAnnotations = _string_map(required=False, default=dict)
    externalURL = _Text(required=False)
    groupKey = _Text(required=False)
    truncatedAlerts = serializers.IntegerField(required=False, min_value=0)


class GrafanaAlert(AlertmanagerAlert):
    silenceURL = _Text(required=False)
    dashboardURL = _Text(required=False)
    panelURL = _Text(required=False)
    values = serializers.DictField(required=False, allow_null=True)
    valueString = _Text(required=False)


class GrafanaPayload(serializers.Serializer):
    receiver = _Text()
    status = serializers.ChoiceField(choices=["firing", "resolved"])
    orgId = serializers.IntegerField(required=False)
    alerts = serializers.ListField(child=GrafanaAlert(), allow_empty=False)
    groupLabels = _string_map(required=False, default=dict)
    commonLabels = _string_map(required=False, default=dict)
    commonAnnotations = _string_map(required=False, default=dict)
    externalURL = _Text(required=False)
    version = _Text(required=False)
    groupKey = _Text(required=False)
    truncatedAlerts = serializers.IntegerField(required=False, min_value=0)
    title = _Text(required=False)
    state = _Text(required=False)
    message = _Text(required=False, max_length=20_000)


class DatadogPayload(serializers.Serializer):
    id = _Text(required=False)
    alert_id = _Text(required=False, max_length=200)
    aggregate = _Text(required=False, max_length=200)
    transition = serializers.CharField(max_length=50)
    title = serializers.CharField(max_length=TEXT_MAX)
    body = _Text(required=False, max_length=20_000)
    tags = _Text(required=False)
    scope = _Text(required=False)
    link = _Text(required=False)
    priority = _Text(required=False, max_length=20)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("aggregate") and not attrs.get("alert_id"):
            raise serializers.ValidationError(
                {"aggregate": "needs $AGGREG_KEY (or alert_id: $ALERT_ID) to tell alerts apart"}
            )
        return attrs


def _prometheus_style(alert: dict[str, Any], payload: dict[str, Any], source: str) -> InboundAlert:
    labels: dict[str, str] = {**payload.get("commonLabels", {}), **alert["labels"]}
    annotations: dict[str, str] = {**payload.get("commonAnnotations", {}), **alert.get("annotations", {})}
    name = labels.get("alertname", "").strip()
    summary = (annotations.get("summary") or annotations.get("description") or "").strip()
    title = f"{name}: {summary}" if name and summary else name or summary or f"{source} alert"
    link = next(
        (safe_link(alert.get(k)) for k in ("generatorURL", "panelURL", "dashboardURL") if safe_link(alert.get(k))), ""
    )
    details: dict[str, Any] = {"labels": labels, "annotations": annotations}
    for key in ("startsAt", "endsAt", "silenceURL", "dashboardURL", "panelURL", "values", "valueString"):
        if alert.get(key) not in (None, "", {}):
            details[key] = alert[key]
    for key in ("receiver", "externalURL", "groupKey"):
        if payload.get(key):
            details[key] = payload[key]
    return InboundAlert(
        fingerprint=alert.get("fingerprint") or _labels_fingerprint(alert["labels"]),
        title=title[:TITLE_MAX],
        firing=alert["status"] == "firing",
        labels=labels,
        severity=severity_of(labels.get("severity", "")),
        link=link,
        agent_names=_agent_names(labels),
        details=details,
    )


def alertmanager_parse(data: object) -> list[InboundAlert]:
    """Alertmanager's webhook payload → its alerts. Raises ValidationError naming the field."""
    serializer = AlertmanagerPayload(data=data)
    if not serializer.is_valid():
        raise _errors(serializer)
    payload = serializer.validated_data
    return [_prometheus_style(alert, payload, "Alertmanager") for alert in payload["alerts"]]


def grafana_parse(data: object) -> list[InboundAlert]:
    """Grafana's webhook contact point payload → its alerts. Raises ValidationError naming the field."""
    serializer = GrafanaPayload(data=data)
    if not serializer.is_valid():
        raise _errors(serializer)
    payload = serializer.validated_data
    return [_prometheus_style(alert, payload, "Grafana") for alert in payload["alerts"]]


def _datadog_tags(text: str) -> dict[str, str]:
    """``$TAGS`` ("env:prod,agent:refund-bot,monitor") as labels; a tag without a value maps to ""."""
    tags: dict[str, str] = {}
    for raw in text.split(","):
        tag = raw.strip()
        if tag:
            key, _, value = tag.partition(":")
            tags.setdefault(key.strip(), value.strip())
    return tags


def datadog_parse(data: object) -> list[InboundAlert]:
    """A body made from ``DATADOG_TEMPLATE`` → one alert. Raises ValidationError naming the field."""
    serializer = DatadogPayload(data=data)
    if not serializer.is_valid():
        raise _errors(serializer)
    payload = serializer.validated_data
    tags = _datadog_tags(payload.get("tags", ""))
    # $AGGREG_KEY groups a monitor's events for one scope; the monitor id and scope stand in without it.
    fingerprint = payload.get("aggregate") or f"{payload.get('alert_id', '')}:{payload.get('scope', '')}"
    details = {k: payload[k] for k in ("id", "alert_id", "transition", "scope", "priority", "body") if payload.get(k)}
    details["tags"] = tags
    return [
        InboundAlert(
            fingerprint=fingerprint,
            title=payload["title"][:TITLE_MAX],
            firing=payload["transition"].strip().lower() not in DATADOG_RESOLVED,
            labels=tags,
            severity=severity_of(tags.get("severity", ""), payload.get("priority", "")),
            link=safe_link(payload.get("link")),
            agent_names=_agent_names(tags),
            details=details,
        )
    ]


# --- the generic webhook: a mapping of JSON paths -----------------------------------------------------------

WEBHOOK_FIELDS = ("title", "status", "fingerprint", "agent", "severity", "link")
WEBHOOK_PARAMS = (*WEBHOOK_FIELDS, "alerts")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")
PATH_MAX = 200


def path_parse(path: str, param: str) -> list[str | int]:
    """``$.alert.labels['agent name'].x[0]`` → ["alert", "labels", "agent name", "x", 0]. Raises ValidationError."""
    text = path.strip()
    if not text.startswith("$") or len(text) > PATH_MAX:
        raise ValidationError({param: f"expected a JSON path like $.alert.name (at most {PATH_MAX} characters)"})
    steps: list[str | int] = []
    pos = 1
    while pos < len(text):
        match = _STEP.match(text, pos)
        if match is None:
            raise ValidationError({param: f"cannot read the JSON path {text!r} at character {pos + 1}"})
        name, index, quoted = match.groups()
        steps.append(int(index) if index is not None else name or quoted)
        pos = match.end()
    return steps


def path_get(document: object, steps: list[str | int]) -> object:
    """The value at ``steps``, or KeyError."""
    node: Any = document
    for step in steps:
        in_list = isinstance(step, int) and isinstance(node, list) and step < len(node)
        if in_list or (isinstance(step, str) and isinstance(node, dict) and step in node):
            node = node[step]
        else:
            raise KeyError(step)
    return node


def webhook_mapping(params: Mapping[str, str]) -> dict[str, list[str | int]]:
    """The query string's mapping, parsed: ``title`` is required; unknown parameters are refused."""
    unknown = sorted(set(params) - set(WEBHOOK_PARAMS))
    if unknown:
        raise ValidationError({unknown[0]: f"unknown mapping parameter; known: {', '.join(WEBHOOK_PARAMS)}"})
    if not params.get("title"):
        raise ValidationError({"title": "the mapping needs ?title=<JSON path of the alert's title>, e.g. $.title"})
    return {name: path_parse(value, name) for name, value in params.items() if value}


def _scalar_text(value: object, param: str, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)[:TEXT_MAX]
    raise ValidationError({param: f"{where} holds {type(value).__name__}, not text or a number"})


def webhook_parse(data: object, params: Mapping[str, str]) -> list[InboundAlert]:
    """A JSON body and the mapping of its paths (``?title=$.name&status=$.state…``) → alerts.

    With ``alerts=$.items`` the body holds a list of alerts and the other paths are read inside each
    item (``$`` is then the item). Raises ValidationError naming the parameter or the path.
    """
    mapping = webhook_mapping(params)
    items: list[object] = [data]
    if "alerts" in mapping:
        try:
            found = path_get(data, mapping["alerts"])
        except KeyError:
            raise ValidationError({"alerts": f"{params['alerts']} is not in the body"}) from None
        if not isinstance(found, list) or not found:
            raise ValidationError({"alerts": f"{params['alerts']} is not a non-empty list"})
        items = found
    out: list[InboundAlert] = []
    for i, item in enumerate(items):
        values: dict[str, str] = {}
        for name in WEBHOOK_FIELDS:
            if name not in mapping:
                continue
            where = f"{params[name]}" + (f" (alert {i})" if "alerts" in mapping else "")
            try:
                raw = path_get(item, mapping[name])
            except KeyError:
                if name == "title":
                    raise ValidationError({"title": f"{where} is not in the body"}) from None
                continue
            if raw is not None:
                values[name] = _scalar_text(raw, name, where)
        title = values["title"].strip()
        if not title:
            raise ValidationError({"title": f"{params['title']} is empty"})
        labels = {k: v for k, v in values.items() if k in ("agent", "severity")}
        out.append(
            InboundAlert(
                fingerprint=values.get("fingerprint") or hashlib.sha256(title.encode()).hexdigest()[:32],
                title=title[:TITLE_MAX],
                firing=values.get("status", "firing").strip().lower() not in RESOLVED_WORDS,
                labels=labels,
                severity=severity_of(values.get("severity", "")),
                link=safe_link(values.get("link")),
                agent_names=[values["agent"].strip()] if values.get("agent", "").strip() else [],
                details={"fields": values},
            )
        )
    return out
