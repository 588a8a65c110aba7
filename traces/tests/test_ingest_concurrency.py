"""Concurrent batches that share traces and spans store each span once and count it once."""

import copy
import threading
from datetime import UTC, datetime

import pytest
from django.db import connection

from traces.models import Step, Trace
from traces.services import trace_ingest
from traces.synthetic import trajectory_spans


@pytest.mark.django_db(transaction=True)
def test_overlapping_batches_in_parallel_store_and_count_each_span_once(make_agent):
    make_agent("busy")
    start = datetime(2026, 11, 20, 12, tzinfo=UTC)
    runs = [
        trajectory_spans(agent="busy", trace_id=f"{i:032x}", start=start, steps=[{"kind": "llm", "tokens_in": 10}] * 8)
        for i in range(1, 7)
    ]
    every = [s for run in runs for s in run]
    # Four writers: each sends all runs, in a different order, so every span arrives four times at once.
    batches = [every, list(reversed(every)), every[::2] + every[1::2], every[1::2] + every[::2]]
    errors = []

    def send(batch):
        try:
            trace_ingest(spans=[*batch])
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert Step.objects.count() == len(every)
    for trace in Trace.objects.all():
        assert trace.step_count == 9
        assert trace.tokens_in == 80


@pytest.mark.django_db(transaction=True)
def test_spans_stored_by_another_batch_after_the_lookup_are_stored_and_counted_once(make_agent, monkeypatch):
    # Another batch may commit some of these spans between the writer's look-up of stored spans and its COPY:
    # the COPY then meets them in the unique key, and the batch is written again without them.
    import traces.ingest.writer as writer

    make_agent("racer")
    start = datetime(2026, 11, 20, 12, tzinfo=UTC)
    run = trajectory_spans(
        agent="racer",
        trace_id="ab" * 16,
        start=start,
        steps=[{"kind": "llm", "tokens_in": 10}, {"kind": "tool", "tool": "search", "args": {"q": "x"}}] * 3,
    )
    first = trace_ingest(spans=copy.deepcopy(run[:4]))
    # As if the look-up ran before the first batch committed: it finds none of the spans.
    monkeypatch.setattr(
        writer,
        "_EXISTING_SPANS",
        "SELECT NULL::bigint, NULL::varchar WHERE %s::bigint[] IS NULL AND %s::varchar[] IS NULL "
        "AND %s::timestamptz[] IS NULL",
    )
    second = trace_ingest(spans=copy.deepcopy(run))
    assert (first.stored, second.stored) == (4, 3)
    trace = Trace.objects.get(trace_id="ab" * 16)
    assert Step.objects.filter(trace=trace).count() == 7
    assert (trace.step_count, trace.tokens_in, trace.tool_call_count) == (7, 30, 3)
    assert sorted(Step.objects.filter(trace=trace).values_list("span_id", flat=True)) == sorted(s.span_id for s in run)
