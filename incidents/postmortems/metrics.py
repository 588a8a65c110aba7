"""Chart data for the incident metrics page, as plain lists and dicts (passed to plotly with json_script)."""

from collections import defaultdict
from datetime import date, datetime, timedelta
from statistics import median
from typing import Any, TypedDict

from django.db.models import Q, QuerySet
from django.utils import timezone

from incidents.models import FailureClass, Incident, PostMortem, Severity
from incidents.selectors import POSTMORTEM_DUE_AFTER, FailureClassCounts, incident_counts_by_failure_class

RECURRENCE_WINDOW = timedelta(days=30)
DEFAULT_WEEKS = 26

Series = dict[str, list[float | None]]  # severity -> median hours per week (None: no measure)


class WeekRow(TypedDict):
    week: str
    values: list[float | None]  # contain, resolve for each severity in turn


class ContainResolveTimes(TypedDict):
    weeks: list[str]
    severities: list[str]
    contain: Series
    resolve: Series
    counts: dict[str, list[int]]  # severity -> incidents declared per week
    measured: int
    rows: list[WeekRow]


# "class" is a keyword: the functional form.
RecurrenceRow = TypedDict(
    "RecurrenceRow",
    {"number": int, "title": str, "class": str, "agents": list[str], "previous": int, "days": float},
)


class Recurrence(TypedDict):
    recurring: int
    incidents: int
    classes: list[str]
    counts: list[int]
    rows: list[RecurrenceRow]


class OverdueRow(TypedDict):
    number: int
    title: str
    severity: str
    due_at: datetime
    status: str


class Backlog(TypedDict):
    draft: int
    in_review: int
    published: int
    missing: int
    open: int
    overdue: int
    overdue_rows: list[OverdueRow]


def _week_start(moment: datetime) -> date:
    day = timezone.localtime(moment).date()
    return day - timedelta(days=day.weekday())


def _hours(start: datetime, end: datetime | None) -> float | None:
    if end is None or end < start:
        return None
    return round((end - start).total_seconds() / 3600, 2)


def _incidents(include_drills: bool) -> QuerySet[Incident]:
    """Every incident, or (the default of every chart) those of no gameday's drill agent."""
    qs = Incident.objects.all()
    return qs if include_drills else qs.exclude(agents__is_drill=True)


def time_to_contain_resolve(
    *, since: datetime | None = None, now: datetime | None = None, include_drills: bool = False
) -> ContainResolveTimes:
    """Median hours from declaration to containment and to resolution, per severity and week of declaration.

    Returns ``{"weeks": ["2025-01-06", ...], "severities": [...], "contain": {sev: [hours or None per
    week]}, "resolve": {...}, "counts": {sev: [incidents declared per week]}, "measured": n, "rows":
    [{"week", "values": [contain, resolve for each severity in turn]}]}``.
    Weeks run Monday to Sunday from the first week with an incident in the window (default: the
    last 26 weeks) to this week; a week without a measure for a severity is None (a gap, not zero).
    ``measured`` counts incidents with at least one of the two times.
    """
    now = now or timezone.now()
    since = since or now - timedelta(weeks=DEFAULT_WEEKS)
    rows = list(
        _incidents(include_drills)
        .filter(declared_at__gte=since, declared_at__lte=now)
        .order_by("declared_at")
        .values_list("severity", "declared_at", "contained_at", "resolved_at")
    )
    severities = list(Severity.values)
    if not rows:
        no_series: dict[str, list[Any]] = {s: [] for s in severities}
        return {
            "weeks": [],
            "severities": severities,
            "contain": no_series,
            "resolve": dict(no_series),
            "counts": dict(no_series),
            "measured": 0,
            "rows": [],
        }
    first, last = _week_start(rows[0][1]), _week_start(now)
    weeks: list[date] = []
    week = first
    while week <= last:
        weeks.append(week)
        week += timedelta(weeks=1)
    index = {w: i for i, w in enumerate(weeks)}
    contain: defaultdict[tuple[str, date], list[float]] = defaultdict(list)
    resolve: defaultdict[tuple[str, date], list[float]] = defaultdict(list)
    counts = {s: [0] * len(weeks) for s in severities}
    measured = 0
    for severity, declared, contained, resolved in rows:
        week = _week_start(declared)
        if severity in counts:
            counts[severity][index[week]] += 1
        to_contain, to_resolve = _hours(declared, contained), _hours(declared, resolved)
        if to_contain is not None:
            contain[(severity, week)].append(to_contain)
        if to_resolve is not None:
            resolve[(severity, week)].append(to_resolve)
        measured += to_contain is not None or to_resolve is not None

    def series(values: dict[tuple[str, date], list[float]]) -> Series:
        return {
            s: [round(median(values[(s, w)]), 2) if values.get((s, w)) else None for w in weeks] for s in severities
        }

    contain_series, resolve_series = series(contain), series(resolve)
    return {
        "weeks": [w.isoformat() for w in weeks],
        "severities": severities,
        "contain": contain_series,
        "resolve": resolve_series,
        "counts": counts,
        "measured": measured,
        "rows": [
            {
                "week": w.isoformat(),
                "values": [v for s in severities for v in (contain_series[s][i], resolve_series[s][i])],
            }
            for i, w in enumerate(weeks)
        ],
    }


def incidents_per_failure_class(*, since: datetime | None = None, include_drills: bool = False) -> FailureClassCounts:
    """Incident counts per failure class, stacked by severity (see ``incident_counts_by_failure_class``)."""
    return incident_counts_by_failure_class(since=since, include_drills=include_drills)


def recurrence(*, window: timedelta = RECURRENCE_WINDOW, include_drills: bool = False) -> Recurrence:
    """Incidents that recur: same failure class and a shared agent as an earlier incident declared within ``window``.

    Returns ``{"recurring": n, "incidents": total incidents, "classes": [names], "counts": [recurring per
    class], "rows": [{"number", "title", "class", "agents": [slugs], "previous": number, "days": float}]}``
    (rows newest first). An incident counts once however many agents or earlier incidents it shares.
    """
    fields = ("id", "number", "title", "failure_class_id", "declared_at")
    incidents = list(_incidents(include_drills).order_by("declared_at", "id").values(*fields))
    links = Incident.agents.through.objects.values_list("incident_id", "agent__slug")
    agents_of: dict[int, list[str]] = defaultdict(list)
    for incident_id, slug in links:
        agents_of[incident_id].append(slug)
    classes = list(FailureClass.objects.order_by("order", "name").values_list("id", "name"))
    class_names = dict(classes)
    last_seen: dict[tuple[int, str], dict[str, Any]] = {}  # (class, agent) -> the latest earlier incident
    rows: list[RecurrenceRow] = []
    per_class: dict[int, int] = defaultdict(int)
    for incident in incidents:
        if incident["failure_class_id"] is None:
            continue  # not yet classified: it cannot recur as a class, nor be recurred
        found: dict[str, Any] | None = None
        for slug in sorted(agents_of.get(incident["id"], [])):
            key = (incident["failure_class_id"], slug)
            previous = last_seen.get(key)
            if (
                previous is not None
                and incident["declared_at"] - previous["declared_at"] <= window
                and (found is None or previous["declared_at"] > found["declared_at"])
            ):
                found = previous
            last_seen[key] = incident
        if found is not None:
            previous = found
            per_class[incident["failure_class_id"]] += 1
            rows.append(
                {
                    "number": incident["number"],
                    "title": incident["title"],
                    "class": class_names.get(incident["failure_class_id"], "?"),
                    "agents": sorted(agents_of[incident["id"]]),
                    "previous": previous["number"],
                    "days": round((incident["declared_at"] - previous["declared_at"]).total_seconds() / 86400, 1),
                }
            )
    rows.reverse()
    return {
        "recurring": len(rows),
        "incidents": len(incidents),
        "classes": [name for _, name in classes],
        "counts": [per_class.get(pk, 0) for pk, _ in classes],
        "rows": rows,
    }


def postmortem_backlog(*, now: datetime | None = None, include_drills: bool = False) -> Backlog:
    """Open and overdue post-mortems.

    Returns ``{"draft": n, "in_review": n, "published": n, "missing": n, "overdue": n, "open": n,
    "overdue_rows": [{"number", "title", "severity", "due_at", "status"}]}``: ``missing`` counts
    incidents without a post-mortem whose severity sets a deadline; ``overdue`` counts unpublished
    post-mortems past ``due_at`` and missing ones past the deadline (as ``incidents.selectors.postmortem_overdue``).
    """
    now = now or timezone.now()
    postmortems = PostMortem.objects.all()
    if not include_drills:
        postmortems = postmortems.exclude(incident__agents__is_drill=True)
    by_status = {s: postmortems.filter(status=s).count() for s in PostMortem.Status.values}
    overdue_pms = list(
        postmortems.filter(due_at__lt=now)
        .exclude(status=PostMortem.Status.PUBLISHED)
        .select_related("incident")
        .order_by("due_at")
    )
    deadline = Q()
    for severity, after in POSTMORTEM_DUE_AFTER.items():
        deadline |= Q(severity=severity, declared_at__lt=now - after)
    without = _incidents(include_drills).filter(postmortem__isnull=True)
    missing = without.filter(severity__in=list(POSTMORTEM_DUE_AFTER)).count()
    missing_overdue = list(without.filter(deadline).order_by("declared_at")) if POSTMORTEM_DUE_AFTER else []
    rows: list[OverdueRow] = [
        {
            "number": pm.incident.number,
            "title": pm.incident.title,
            "severity": pm.incident.severity,
            "due_at": pm.due_at,
            "status": pm.get_status_display(),
        }
        for pm in overdue_pms
        if pm.due_at is not None  # always: due_at__lt leaves out the NULLs
    ]
    rows += [
        {
            "number": incident.number,
            "title": incident.title,
            "severity": incident.severity,
            "due_at": incident.declared_at + POSTMORTEM_DUE_AFTER[incident.severity],
            "status": "Not started",
        }
        for incident in missing_overdue
    ]
    rows.sort(key=lambda row: row["due_at"])
    return {
        "draft": by_status[PostMortem.Status.DRAFT],
        "in_review": by_status[PostMortem.Status.IN_REVIEW],
        "published": by_status[PostMortem.Status.PUBLISHED],
        "missing": missing,
        "open": by_status[PostMortem.Status.DRAFT] + by_status[PostMortem.Status.IN_REVIEW],
        "overdue": len(rows),
        "overdue_rows": rows,
    }
