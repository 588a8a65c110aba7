"""Retention and the steps table's day partitions (issue 17, item 2): whole old days go, kept traces stay."""

import zlib
from datetime import UTC, datetime, timedelta
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from evals.models import EvalCase
from incidents.detection.models import DetectorRollup, RolledHour
from incidents.models import Alert, PostMortem
from traces.models import Step, StepPayload, Trace
from traces.retention.partitions import DEFAULT, partition_name, partitions_ensure, partitions_list
from traces.retention.services import retention_run
from traces.tasks import retention_task

pytestmark = pytest.mark.django_db

TODAY = datetime.now(UTC).date()
OLD_DAY = TODAY - timedelta(days=40)
OLD = datetime.combine(OLD_DAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)


def _trace(agent, make_spans, ingest, *, trace_id: str, start: datetime, steps: int = 2) -> Trace:
    spans = make_spans(agent=agent.slug, trace_id=trace_id, start=start, steps=[{"kind": "llm"}] * steps)
    ingest(spans)
    return Trace.objects.get(trace_id=trace_id)


def _partition_of(trace: Trace) -> set[str]:
    with connection.cursor() as cur:
        cur.execute("SELECT DISTINCT tableoid::regclass::text FROM traces_step WHERE trace_id = %s", [trace.pk])
        return {row[0] for row in cur.fetchall()}


def test_beat_makes_the_next_days_and_a_span_lands_in_its_day(make_agent, make_spans, ingest):
    retention_task()
    names = {p.name for p in partitions_list()}
    assert {partition_name(TODAY + timedelta(days=n)) for n in range(4)} <= names and DEFAULT in names

    ahead = TODAY + timedelta(days=12)
    assert partitions_ensure(first=ahead, last=ahead) == [partition_name(ahead)]
    assert partitions_ensure(first=ahead, last=ahead) == []  # made once
    start = datetime.combine(ahead, datetime.min.time(), tzinfo=UTC) + timedelta(hours=1)
    trace = _trace(make_agent("ahead-bot"), make_spans, ingest, trace_id="a1" * 16, start=start)
    assert _partition_of(trace) == {partition_name(ahead)}


def test_a_day_without_a_partition_goes_to_the_default_and_moves_when_its_day_is_made(make_agent, make_spans, ingest):
    trace = _trace(make_agent("late-bot"), make_spans, ingest, trace_id="b2" * 16, start=OLD, steps=3)
    assert _partition_of(trace) == {DEFAULT}

    assert partitions_ensure(first=OLD_DAY, last=OLD_DAY) == [partition_name(OLD_DAY)]
    assert _partition_of(trace) == {partition_name(OLD_DAY)}
    assert trace.steps.count() == 4  # the root and its three steps, all still read through the model


def test_retention_drops_an_old_day_and_keeps_the_traces_people_rely_on(
    make_agent, make_spans, ingest, make_incident, make_client, viewer
):
    agent = make_agent("old-bot")
    partitions_ensure(first=OLD_DAY, last=OLD_DAY)
    gone = _trace(agent, make_spans, ingest, trace_id="c3" * 16, start=OLD)
    incident_trace = _trace(agent, make_spans, ingest, trace_id="d4" * 16, start=OLD)
    postmortem_trace = _trace(agent, make_spans, ingest, trace_id="e5" * 16, start=OLD)
    eval_trace = _trace(agent, make_spans, ingest, trace_id="f6" * 16, start=OLD, steps=5)
    golden = _trace(agent, make_spans, ingest, trace_id="a7" * 16, start=OLD)
    recent = _trace(agent, make_spans, ingest, trace_id="b8" * 16, start=datetime.now(UTC) - timedelta(hours=1))
    Trace.objects.filter(pk=golden.pk).update(is_golden=True)
    incident = make_incident(traces=[incident_trace])
    PostMortem.objects.create(incident=make_incident(title="Another")).attached_traces.add(postmortem_trace)
    EvalCase.objects.create(agent=agent, trace=eval_trace, title="No refund loop", input="x", expected_behaviour="y")
    alert = Alert.objects.create(detector="loop", agent=agent, trace=gone, fingerprint="fp-old", title="Loop")
    span_id = gone.steps.first().span_id
    StepPayload.objects.create(trace=gone, span_id=span_id, field="output", started_at=OLD, size=5,
                               data=zlib.compress(b"hello"))  # fmt: skip
    kept = [incident_trace, postmortem_trace, eval_trace, golden]
    before = {t.pk: sorted(t.steps.values_list("span_id", flat=True)) for t in kept}

    dry = retention_run(dry_run=True)
    assert [d.name for d in dry.dropped] == [partition_name(OLD_DAY)]
    assert (dry.dropped[0].steps, dry.dropped[0].kept_steps) == (3 + 3 + 3 + 6 + 3, 3 + 3 + 6 + 3)
    assert (dry.steps, dry.traces, dry.payloads, dry.kept_traces) == (3, 1, 1, 4)
    assert partition_name(OLD_DAY) in {p.name for p in partitions_list()} and Trace.objects.filter(pk=gone.pk).exists()

    report = retention_run()
    assert (report.steps, report.traces, report.payloads, report.kept_traces) == (3, 1, 1, 4)
    assert partition_name(OLD_DAY) not in {p.name for p in partitions_list()}
    assert not Trace.objects.filter(pk=gone.pk).exists() and not StepPayload.objects.filter(trace_id=gone.pk).exists()
    alert.refresh_from_db()
    assert alert.trace is None  # the alert stays, without its trace
    for trace in kept:
        assert sorted(trace.steps.values_list("span_id", flat=True)) == before[trace.pk]
        assert _partition_of(trace) == {DEFAULT}
    assert incident.traces.get() == incident_trace
    page = make_client(viewer).get(eval_trace.get_absolute_url())  # the viewer reads the kept steps
    assert page.status_code == 200 and page.content.decode().count('class="step ') == 6
    assert recent.steps.count() == 3 and Trace.objects.filter(pk=recent.pk).exists()
    assert retention_run().dropped == []  # nothing left to do


def test_a_trace_that_ran_past_the_cutoff_keeps_its_newer_steps(make_agent, make_spans, ingest):
    agent = make_agent("long-bot")
    old_hour, recent_hour = OLD.replace(minute=0), datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    DetectorRollup.objects.create(agent=agent, hour=old_hour, llm_outputs=3)
    DetectorRollup.objects.create(agent=agent, hour=recent_hour, llm_outputs=4)
    RolledHour.objects.create(hour=old_hour)
    partitions_ensure(first=OLD_DAY, last=OLD_DAY)
    trace = _trace(agent, make_spans, ingest, trace_id="c9" * 16, start=OLD)
    later = make_spans(agent=agent.slug, trace_id="c9" * 16, start=datetime.now(UTC) - timedelta(days=2),
                       steps=[{"kind": "tool", "tool": "search"}])  # fmt: skip
    ingest([s for s in later if not s.is_root])

    retention_run()
    assert list(Step.objects.filter(trace=trace).values_list("tool_name", flat=True)) == ["search"]
    # the detectors' hourly rollups of the dropped days go with them
    assert list(DetectorRollup.objects.filter(agent=agent).values_list("hour", flat=True)) == [recent_hour]
    assert not RolledHour.objects.filter(hour=old_hour).exists()


def test_the_command_says_what_went_and_a_dry_run_changes_nothing(make_agent, make_spans, ingest):
    partitions_ensure(first=OLD_DAY, last=OLD_DAY)
    trace = _trace(make_agent("cmd-bot"), make_spans, ingest, trace_id="d1" * 16, start=OLD)

    out = _command("retention", "--dry-run")
    assert f"Would drop partition {partition_name(OLD_DAY)} (3 steps)" in out
    assert "Would delete 3 steps, 1 traces and 0 stored payloads" in out and "(30 days)" in out
    assert Trace.objects.filter(pk=trace.pk).exists()

    out = _command("retention")
    assert f"Dropped partition {partition_name(OLD_DAY)} (3 steps)" in out and "Deleted 3 steps, 1 traces" in out
    assert not Trace.objects.filter(pk=trace.pk).exists()


def test_retention_off_keeps_everything(make_agent, make_spans, ingest, settings):
    settings.FIREBREAK_RETENTION_DAYS = 0
    partitions_ensure(first=OLD_DAY, last=OLD_DAY)
    trace = _trace(make_agent("keep-bot"), make_spans, ingest, trace_id="e2" * 16, start=OLD)

    assert "Retention is off" in _command("retention")
    assert trace.steps.count() == 3 and partition_name(OLD_DAY) in {p.name for p in partitions_list()}


def _command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_long_query_holding_the_steps_table_makes_retention_wait_for_the_next_run(
    make_agent, make_spans, ingest, monkeypatch
):
    from traces.retention import services

    partitions_ensure(first=OLD_DAY, last=OLD_DAY)
    trace = _trace(make_agent("busy-bot"), make_spans, ingest, trace_id="f3" * 16, start=OLD)
    monkeypatch.setattr(services, "LOCK_TIMEOUT", "200ms")
    settings_dict = connection.settings_dict
    reader = psycopg.connect(
        dbname=settings_dict["NAME"], host=settings_dict["HOST"], port=settings_dict["PORT"] or None,
        user=settings_dict["USER"], password=settings_dict["PASSWORD"] or None,
    )  # fmt: skip
    try:
        reader.execute("SELECT count(*) FROM traces_step")  # a long read: its transaction stays open
        report = retention_run()
        assert report.busy == [partition_name(OLD_DAY)] and report.dropped == [] and report.traces == 0
        assert trace.steps.count() == 3 and Trace.objects.filter(pk=trace.pk).exists()
    finally:
        reader.rollback()
        reader.close()
    report = retention_run()  # the next run, the read over
    assert [d.name for d in report.dropped] == [partition_name(OLD_DAY)] and report.traces == 1
    assert not Trace.objects.filter(pk=trace.pk).exists()


def test_the_trace_list_says_how_long_traces_are_kept(make_client, viewer, settings):
    settings.FIREBREAK_RETENTION_DAYS = 14
    page = make_client(viewer).get("/traces/").content.decode()
    assert "Traces are kept 14 days" in page and "eval case" in page
    settings.FIREBREAK_RETENTION_DAYS = 0
    assert "Traces are kept" not in make_client(viewer).get("/traces/").content.decode()
