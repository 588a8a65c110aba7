"""Concurrent batches that share traces and spans store each span once and count it once."""

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
