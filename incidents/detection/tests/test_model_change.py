"""Silent model change: the expected name maps to its first dated snapshot; a different one alerts."""

from incidents.detection import registry
from incidents.detection.runner import detect_batch
from incidents.models import Alert, ModelSnapshot
from traces.models import Trace


def _run(ingest, make_spans, trace_id, *models, agent="writer", model_version="gpt-4o"):
    steps = [{"kind": "llm", "model": m} for m in models]
    ingest(make_spans(agent=agent, trace_id=trace_id, steps=steps, model_version=model_version))
    return detect_batch(trace_pks=[Trace.objects.get(trace_id=trace_id).pk])


def test_registered_with_defaults():
    spec = registry["model_change"]
    assert spec.kind == "streaming" and spec.failure_class == "output-quality"


def test_first_dated_snapshot_is_the_baseline_and_a_different_one_alerts(make_agent, make_spans, ingest):
    make_agent("writer", model_version="gpt-4o")
    # the provider answers gpt-4o with a dated snapshot: that is what gpt-4o means for this agent
    assert _run(ingest, make_spans, "1" * 32, "gpt-4o-2024-08-06", "gpt-4o-2024-08-06") == []
    assert _run(ingest, make_spans, "2" * 32, "gpt-4o-2024-08-06") == []
    snapshot = ModelSnapshot.objects.get(expected="gpt-4o")
    assert snapshot.response == "gpt-4o-2024-08-06" and snapshot.first_trace.trace_id == "1" * 32
    # the same name now answered by another snapshot: a silent model change
    (alert,) = _run(ingest, make_spans, "3" * 32, "gpt-4o-2024-11-20", "gpt-4o-2024-11-20")
    assert alert.detector == "model_change"
    assert "gpt-4o-2024-11-20" in alert.title and "gpt-4o-2024-08-06" in alert.title
    assert alert.failure_class.slug == "output-quality"
    assert alert.trace.trace_id == "3" * 32
    # the same pair again is the same alert (one fingerprint per agent and model pair)
    (again,) = _run(ingest, make_spans, "4" * 32, "gpt-4o-2024-11-20")
    assert again.pk == alert.pk and Alert.objects.filter(detector="model_change").count() == 1


def test_each_agent_and_expected_name_has_its_own_baseline(make_agent, make_spans, ingest):
    make_agent("writer")
    make_agent("reader")
    assert _run(ingest, make_spans, "5" * 32, "gpt-4o-2024-08-06") == []
    assert _run(ingest, make_spans, "6" * 32, "gpt-4o-2024-11-20", agent="reader") == []
    assert _run(ingest, make_spans, "7" * 32, "claude-3-5-sonnet-20241022", model_version="claude-3-5-sonnet") == []
    assert ModelSnapshot.objects.count() == 3


def test_the_requested_model_is_read_without_a_query_per_step(
    make_agent, make_spans, ingest, django_assert_max_num_queries
):
    # The runner leaves Step.attributes deferred; the request model comes with the steps' query, so a batch of
    # many model calls costs the same few queries as one (it used to cost one more query per LLM step).
    make_agent("writer", model_version="gpt-4o")
    assert _run(ingest, make_spans, "8" * 32, "gpt-4o-mini-2024-07-18", model_version="") == []  # no name: skipped
    steps = [{"kind": "llm", "model": "gpt-4o-2024-08-06", "attributes": {"gen_ai.request.model": " gpt-4o "}}] * 60
    steps += [{"kind": "llm", "model": "gpt-4o-2024-11-20", "attributes": {"gen_ai.request.model": "gpt-4o"}}]
    ingest(make_spans(agent="writer", trace_id="9" * 32, steps=steps, model_version=""))
    with django_assert_max_num_queries(40):
        (alert,) = detect_batch(trace_pks=[Trace.objects.get(trace_id="9" * 32).pk])
    assert "answered gpt-4o with gpt-4o-2024-11-20, not gpt-4o-2024-08-06" in alert.title
