"""Reads for alerts and detector settings: the alert list, the dashboard feed, the detector registry."""

from typing import NotRequired, TypedDict

from django.db.models import Case, IntegerField, QuerySet, Value, When

from agents.models import Agent
from core.pages import keyset_page
from incidents.detection import registry
from incidents.detection.base import Detector
from incidents.models import Alert, DetectorSetting

ALERT_LIST_LIMIT = 200


class DetectorOverview(TypedDict):
    spec: Detector | None  # None: settings saved for a detector no longer registered
    settings: list[DetectorSetting]
    unregistered: bool
    name: NotRequired[str]  # only when unregistered


def _status_rank() -> Case:
    return Case(
        When(status=Alert.Status.OPEN, then=Value(0)),
        When(status=Alert.Status.ACKNOWLEDGED, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )


def alert_list(
    *, status: str = "", detector: str = "", agent: str = "", limit: int = ALERT_LIST_LIMIT
) -> QuerySet[Alert]:
    """Alerts, open first then acknowledged then resolved, newest ``last_seen`` first within each."""
    qs = Alert.objects.select_related("agent", "trace", "failure_class", "incident")
    if status:
        qs = qs.filter(status=status)
    if detector:
        qs = qs.filter(detector=detector)
    if agent:
        qs = qs.filter(agent__slug=agent)
    return qs.annotate(status_rank=_status_rank()).order_by("status_rank", "-last_seen", "-pk")[:limit]


def alert_page(
    *, status: str = "", agent: str = "", before: int | None = None, limit: int = 50
) -> tuple[list[Alert], int | None]:
    """Alerts newest first (by id: an alert keeps its place as it fires again), ``limit`` of them from
    below the id ``before``, and the id the next page starts below (None: no more). For the API."""
    qs = Alert.objects.select_related("agent", "trace", "failure_class", "incident")
    if status:
        qs = qs.filter(status=status)
    if agent:
        qs = qs.filter(agent__slug=agent)
    return keyset_page(qs, key="pk", descending=True, cursor=before, limit=limit)


def alert_open_feed(*, limit: int = 10) -> list[Alert]:
    """The latest open alerts, for the dashboard."""
    return list(
        Alert.objects.filter(status=Alert.Status.OPEN)
        .select_related("agent", "trace", "incident")
        .order_by("-last_seen", "-pk")[:limit]
    )


def alert_get(*, pk: int) -> Alert:
    return Alert.objects.select_related("agent", "trace", "failure_class", "incident").get(pk=pk)


def alert_detector_names() -> list[str]:
    """Detectors that raised alerts, plus the registered ones (for the filter)."""
    names = set(Alert.objects.values_list("detector", flat=True).distinct())
    names.update(detector_registry().keys())
    return sorted(names)


def detector_registry() -> dict[str, Detector]:
    """The registered detectors, name -> Detector (IncidentsConfig.ready() registered them)."""
    return registry


def detector_settings_overview() -> list[DetectorOverview]:
    """Each registered detector with its defaults, rule and saved settings (all agents first)."""
    registry = detector_registry()
    rows: dict[str, list[DetectorSetting]] = {}
    for setting in DetectorSetting.objects.select_related("agent").order_by("detector", "agent__slug"):
        rows.setdefault(setting.detector, []).append(setting)
    out: list[DetectorOverview] = []
    for name in sorted(registry):
        spec = registry[name]
        saved = sorted(rows.get(name, []), key=lambda s: (s.agent_id is not None, s.agent.slug if s.agent else ""))
        out.append({"spec": spec, "settings": saved, "unregistered": False})
    for name in sorted(set(rows) - set(registry)):
        out.append({"spec": None, "name": name, "settings": rows[name], "unregistered": True})
    return out


def agent_choices() -> list[Agent]:
    return list(Agent.objects.order_by("slug"))


def alert_new_since(*, since: int | None, limit: int = 5) -> tuple[list[Alert], int]:
    """Alerts raised after the one with id ``since`` (oldest first, at most ``limit``), and the id the
    next poll sends. With ``since`` None (a page's first poll) no alert is returned: the cursor starts at
    the newest alert, so a page shows only what is raised while it is open."""
    if since is None:
        newest = Alert.objects.order_by("-pk").values_list("pk", flat=True).first()
        return [], newest or 0
    alerts = list(Alert.objects.filter(pk__gt=since).select_related("agent", "trace").order_by("pk")[:limit])
    return alerts, alerts[-1].pk if alerts else since
