"""incidents.receivers: what a committed ingest batch hands to detection."""

from incidents import receivers
from incidents.detection.runner import batch_steps_take
from traces.models import Trace
from traces.services import trace_ingest


def _queued(monkeypatch) -> list[tuple[list[int], str | None]]:
    queued: list[tuple[list[int], str | None]] = []
    monkeypatch.setattr(receivers.detect_batch_task, "delay", lambda pks, key=None: queued.append((pks, key)))
    return queued


def test_live_batch_is_queued_for_streaming_detection(
    make_agent, make_spans, monkeypatch, django_capture_on_commit_callbacks
):
    queued = _queued(monkeypatch)
    make_agent("live-bot")
    with django_capture_on_commit_callbacks(execute=True):
        trace_ingest(spans=make_spans(agent="live-bot", steps=[{"kind": "llm"}]))
    [(pks, key)] = queued
    assert pks == [Trace.objects.get(agent__slug="live-bot").pk]
    assert key and len(batch_steps_take(key)) == 2  # the new trace's root and step wait for the worker


def test_backfill_batch_is_stored_without_detection(
    make_agent, make_spans, monkeypatch, django_capture_on_commit_callbacks
):
    queued = _queued(monkeypatch)
    make_agent("old-bot")
    with django_capture_on_commit_callbacks(execute=True):
        result = trace_ingest(spans=make_spans(agent="old-bot", steps=[{"kind": "llm"}]), backfill=True)
    assert result.stored == 2
    assert queued == []
