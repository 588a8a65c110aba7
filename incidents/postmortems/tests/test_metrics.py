"""Metrics selectors on seeded incidents, and the metrics page."""

from datetime import UTC, datetime, timedelta

import pytest

from incidents.models import FailureClass, Incident, PostMortem
from incidents.postmortems import metrics

NOW = datetime(2025, 6, 18, 12, 0, tzinfo=UTC)  # a Wednesday
MONDAY = datetime(2025, 6, 16, tzinfo=UTC)


def make(number, *, severity="SEV2", declared, contained=None, resolved=None, cls=None, agents=()):
    incident = Incident.objects.create(
        number=number,
        title=f"Incident {number}",
        severity=severity,
        failure_class=cls or FailureClass.objects.first(),
        declared_at=declared,
        contained_at=contained,
        resolved_at=resolved,
    )
    if agents:
        incident.agents.add(*agents)
    return incident


def test_time_to_contain_and_resolve_is_a_median_per_severity_and_week(db):
    last_week = MONDAY - timedelta(days=7) + timedelta(hours=10)
    make(1, severity="SEV1", declared=last_week, contained=last_week + timedelta(hours=1))
    make(
        2,
        severity="SEV1",
        declared=last_week,
        contained=last_week + timedelta(hours=3),
        resolved=last_week + timedelta(hours=10),
    )
    make(3, severity="SEV1", declared=last_week, contained=last_week + timedelta(hours=8))
    make(4, severity="SEV2", declared=MONDAY + timedelta(hours=1), resolved=MONDAY + timedelta(hours=3))
    make(5, severity="SEV3", declared=MONDAY + timedelta(hours=2))  # open: declared, no times
    data = metrics.time_to_contain_resolve(now=NOW)
    assert data["weeks"] == ["2025-06-09", "2025-06-16"]
    assert data["contain"]["SEV1"] == [3.0, None]
    assert data["resolve"]["SEV1"] == [10.0, None]
    assert data["resolve"]["SEV2"] == [None, 2.0]
    assert data["contain"]["SEV3"] == [None, None]
    assert data["counts"]["SEV1"] == [3, 0]
    assert data["counts"]["SEV3"] == [0, 1]
    assert data["measured"] == 4
    assert data["rows"][0]["week"] == "2025-06-09"


def test_time_series_are_empty_without_incidents(db):
    data = metrics.time_to_contain_resolve(now=NOW)
    assert data["weeks"] == [] and data["measured"] == 0


def test_incidents_per_failure_class_counts_every_class(db):
    loop = FailureClass.objects.get(slug="runaway-loop")
    make(1, severity="SEV2", declared=NOW - timedelta(days=1), cls=loop)
    make(2, severity="SEV1", declared=NOW - timedelta(days=2), cls=loop)
    data = metrics.incidents_per_failure_class()
    assert data["total"] == 2
    assert len(data["classes"]) == FailureClass.objects.count()
    row = next(r for r in data["rows"] if r["name"] == loop.name)
    assert row["total"] == 2


def test_recurrence_needs_same_class_same_agent_within_30_days(db, make_agent):
    bot, other = make_agent("refund-bot"), make_agent("billing-bot")
    loop = FailureClass.objects.get(slug="runaway-loop")
    drift = FailureClass.objects.get(slug="context-drift")
    start = NOW - timedelta(days=100)
    make(1, declared=start, cls=loop, agents=[bot])
    make(2, declared=start + timedelta(days=10), cls=loop, agents=[bot])  # recurs (after 1)
    make(3, declared=start + timedelta(days=12), cls=drift, agents=[bot])  # other class
    make(4, declared=start + timedelta(days=14), cls=loop, agents=[other])  # other agent
    make(5, declared=start + timedelta(days=60), cls=loop, agents=[bot])  # 50 days after 2
    make(6, declared=start + timedelta(days=61), cls=loop, agents=[bot, other])  # recurs (after 5, and 4 is too old)
    make(7, declared=start + timedelta(days=62), cls=loop)  # no agent: cannot recur
    data = metrics.recurrence()
    assert data["recurring"] == 2
    assert data["incidents"] == 7
    assert [(r["number"], r["previous"]) for r in data["rows"]] == [(6, 5), (2, 1)]
    assert data["counts"][data["classes"].index(loop.name)] == 2
    assert data["counts"][data["classes"].index(drift.name)] == 0


def test_unclassified_incidents_do_not_recur(db, make_agent):
    bot = make_agent("refund-bot")
    start = NOW - timedelta(days=10)
    for number in (1, 2):
        make(number, declared=start + timedelta(days=number), agents=[bot])
    Incident.objects.update(failure_class=None)
    data = metrics.recurrence()
    assert data["recurring"] == 0 and data["incidents"] == 2


def test_postmortem_backlog_counts_open_and_overdue(db):
    old = NOW - timedelta(days=5)
    a = make(1, severity="SEV1", declared=old)
    PostMortem.objects.create(incident=a, due_at=old + timedelta(hours=48))  # draft, overdue
    b = make(2, severity="SEV1", declared=NOW - timedelta(hours=2))
    PostMortem.objects.create(incident=b, status="in_review", due_at=b.declared_at + timedelta(hours=48))
    c = make(3, severity="SEV1", declared=old)
    PostMortem.objects.create(incident=c, status="published", due_at=old + timedelta(hours=48))
    make(4, severity="SEV1", declared=old)  # none started, past the deadline
    make(5, severity="SEV1", declared=NOW - timedelta(hours=1))  # none started, not due yet
    make(6, severity="SEV3", declared=old)  # no deadline
    data = metrics.postmortem_backlog(now=NOW)
    assert (data["draft"], data["in_review"], data["published"]) == (1, 1, 1)
    assert data["open"] == 2
    assert data["missing"] == 2
    assert data["overdue"] == 2
    assert [(r["number"], r["status"]) for r in data["overdue_rows"]] == [(1, "Draft"), (4, "Not started")]


@pytest.mark.parametrize("with_data", [False, True])
def test_metrics_page_renders_charts_or_honest_empty_states(db, viewer, make_client, with_data):
    if with_data:
        make(1, severity="SEV1", declared=datetime.now(UTC) - timedelta(days=3))
    body = make_client(viewer).get("/incidents/metrics/").content.decode()
    if with_data:
        assert 'id="times-data"' not in body  # nothing contained yet: no time chart, an empty state instead
        assert "No incident has been contained or resolved" in body
        assert 'id="by-class-data"' in body
        assert "No recurrence" in body
        assert "plotly.min.js" in body
        assert 'id="backlog-data"' in body  # a SEV1 without a post-mortem
    else:
        assert "No incidents yet" in body
        assert "plotly.min.js" not in body
