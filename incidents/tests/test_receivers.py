"""incidents.receivers: what a committed ingest batch hands to detection."""

from incidents import receivers
from traces.services import trace_ingest


def _queued(monkeypatch) -> list[list[int]]:
    queued: list[list[int]] = []
    monkeypatch.setattr(receivers.detect_batch_task, "delay", queued.append)
    return queued


def test_live_batch_is_queued_for_streaming_detection(
    make_agent, make_spans, monkeypatch, django_capture_on_commit_callbacks
):
    queued = _queued(monkeypatch)
    make_agent("live-bot")
    with django_capture_on_commit_callbacks(execute=True):
        trace_ingest(spans=make_spans(agent="live-bot", steps=[{"kind": "llm"}]))
    assert len(queued) == 1


def test_backfill_batch_is_stored_without_detection(
    make_agent, make_spans, monkeypatch, django_capture_on_commit_callbacks
):
    queued = _queued(monkeypatch)
    make_agent("old-bot")
    with django_capture_on_commit_callbacks(execute=True):
        result = trace_ingest(spans=make_spans(agent="old-bot", steps=[{"kind": "llm"}]), backfill=True)
    assert result.stored == 2
    assert queued == []
