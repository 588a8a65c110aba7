"""Scheduled detectors against real PostgreSQL: each fires on traffic built to fail it, stays quiet otherwise."""

import json
import random
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from agents.models import Agent, GateState
from incidents.detection.base import registry
from incidents.detection.engine import detector_settings
from incidents.detection.health import health_get, health_scores_compute
from incidents.detection.models import RolledHour
from incidents.detection.scheduled.rollup import counts, raw_counts
from traces.models import Step

NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
REFUSAL = "I'm sorry, but I can't help with that."


def _run(name, agent, now=NOW):
    _, thresholds, _ = detector_settings(name, agent)
    return registry[name].run(agent=agent, settings=thresholds, now=now)


@pytest.fixture
def traffic(make_agent, make_spans, ingest):
    """traffic(agent, n, start, end, step=lambda i, rng: {...}): n traces spread over [start, end)."""

    def build(agent, n, start, end, step):
        rng = random.Random(f"{agent.slug}-{n}-{start.isoformat()}")  # seeded: the same traffic every run
        for i in range(n):
            at = start + (end - start) * (i / n)
            ingest(make_spans(agent=agent.slug, steps=[step(i, rng)], start=at, rng=rng))

    return build


def _llm(tokens=None, output="Your order shipped yesterday.", attributes=None):
    def step(i, rng):
        return {
            "kind": "llm",
            "output": output(i) if callable(output) else output,
            "tokens_out": tokens(i, rng) if tokens else rng.randint(80, 160),
        }

    return step


BASE = (NOW - timedelta(days=3), NOW - timedelta(hours=1))
WINDOW = (NOW - timedelta(minutes=55), NOW - timedelta(minutes=1))


def test_length_drift_fires_on_longer_outputs_and_not_on_stable_ones(make_agent, traffic):
    agent = make_agent("writer")
    traffic(agent, 120, *BASE, _llm())
    traffic(agent, 40, *WINDOW, _llm())
    drifted = make_agent("drifter")
    traffic(drifted, 120, *BASE, _llm())
    traffic(drifted, 40, *WINDOW, _llm(tokens=lambda i, rng: rng.randint(600, 900)))
    assert _run("length_drift", agent) == []
    [finding] = _run("length_drift", drifted)
    assert finding.details["kl"] >= 0.15


def test_refusal_shift(make_agent, traffic):
    agent = make_agent("triage")
    traffic(agent, 100, *BASE, _llm(output=lambda i: REFUSAL if i % 25 == 0 else "Done."))
    traffic(agent, 20, *WINDOW, _llm(output=lambda i: REFUSAL if i % 2 else "Done."))
    [finding] = _run("refusal_shift", agent)
    assert finding.details["window_refusals"] == 10 and finding.trace_id
    calm = make_agent("calm")
    traffic(calm, 100, *BASE, _llm(output=lambda i: REFUSAL if i % 10 == 0 else "Done."))
    traffic(calm, 20, *WINDOW, _llm(output=lambda i: REFUSAL if i % 10 == 0 else "Done."))
    assert _run("refusal_shift", calm) == []


def _tool(bad):
    def step(i, rng):
        if bad(i):
            return {"kind": "tool", "tool": "search", "status": "error", "error": "HTTP 429 Too Many Requests"}
        return {"kind": "tool", "tool": "search", "output": '{"hits": 3}'}

    return step


def test_tool_error_spike(make_agent, traffic):
    agent = make_agent("tooler")
    traffic(agent, 100, *BASE, _tool(lambda i: i % 50 == 0))
    traffic(agent, 20, *WINDOW, _tool(lambda i: i % 3 == 0))
    [finding] = _run("tool_error_spike", agent)
    assert finding.details["window_errors"] == 7
    steady = make_agent("steady")
    traffic(steady, 100, *BASE, _tool(lambda i: i % 20 == 0))
    traffic(steady, 20, *WINDOW, _tool(lambda i: i % 20 == 0))
    assert _run("tool_error_spike", steady) == []


def _emb(vec):
    return lambda i, rng: {"kind": "llm", "output": "ok", "tokens_out": 100} | {"_v": vec}


def test_embedding_drift(make_agent, make_spans, ingest):
    def put(agent, n, start, end, vec):
        rng = random.Random(f"{agent.slug}-{n}-{start.isoformat()}")  # seeded: the same traffic every run
        for i in range(n):
            spans = make_spans(
                agent=agent.slug,
                steps=[{"kind": "llm", "output": "ok", "tokens_out": 100}],
                start=start + (end - start) * (i / n),
                rng=rng,
            )
            spans[0].attributes["embedding"] = [v + rng.uniform(-0.05, 0.05) for v in vec]
            ingest(spans)

    agent = make_agent("embedder")
    put(agent, 20, *BASE, [1, 0, 0, 0])
    put(agent, 12, *WINDOW, [1, 0.05, 0, 0])
    assert _run("embedding_drift", agent) == []
    put(agent, 12, NOW - timedelta(minutes=50), NOW - timedelta(minutes=2), [0, 1, 1, 0])
    [finding] = _run("embedding_drift", agent)
    assert finding.details["cosine"] < 0.82
    assert _run("embedding_drift", make_agent("no-embeddings")) == []


@pytest.fixture
def judge_server():
    """A local OpenAI-compatible endpoint: scores 0.1 for refusals, 0.9 otherwise."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.path == "/v1/chat/completions"
            text = body["messages"][-1]["content"]
            score = 0.1 if "sorry" in text else 0.9
            reply = {"choices": [{"message": {"role": "assistant", "content": json.dumps({"score": score})}}]}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_judge_score_off_without_url_then_fires_on_a_drop(make_agent, traffic, judge_server, settings):
    agent = make_agent("judged")
    traffic(agent, 10, NOW - timedelta(minutes=110), NOW - timedelta(minutes=65), _llm())
    traffic(agent, 10, *WINDOW, _llm(output=REFUSAL))
    settings.FIREBREAK_JUDGE_URL = ""
    assert _run("judge_score", agent) == []
    settings.FIREBREAK_JUDGE_URL = judge_server
    earlier = NOW - timedelta(minutes=61)  # the window then holds the good answers: sets the baseline
    assert _run("judge_score", agent, now=earlier) == []
    [finding] = _run("judge_score", agent)
    assert finding.details["baseline_mean"] == pytest.approx(0.9) and finding.details["window_mean"] < 0.2


def test_health_score_orders_killed_below_healthy(make_agent, traffic):
    healthy, killed = make_agent("healthy"), make_agent("dead")
    traffic(healthy, 10, *WINDOW, _llm())
    Agent.objects.filter(pk=killed.pk).update(state=GateState.KILLED)
    scores = health_scores_compute(now=NOW)
    assert scores["healthy"] == 100 and scores["dead"] == 0
    health_scores_compute(now=NOW)
    got = health_get(agent_slugs=["healthy", "dead", "unknown"])
    assert got["healthy"] == {"score": 100, "trend": [100, 100]}
    assert got["unknown"] == {"score": None, "trend": []}


def test_the_baseline_is_read_from_hourly_rollups_that_count_what_the_steps_count(make_agent, traffic):
    agent = make_agent("rolled")
    refusal = _llm(output=lambda i: REFUSAL if i % 4 == 0 else "Your order shipped yesterday.")
    traffic(agent, 200, *BASE, refusal)
    since, until = BASE[0] - timedelta(minutes=30), BASE[1] + timedelta(minutes=30)
    raw = raw_counts(agent_id=agent.pk, since=since, until=until)
    rolled = counts(agent_id=agent.pk, since=since, until=until)
    assert (rolled.llm_outputs, rolled.llm_refusals, rolled.length_bins) == (200, 50, raw.length_bins)
    assert RolledHour.objects.count() == 71  # every whole hour of the range (3 days less an hour), all agents
    # Read again, the rolled hours come from their rows, not from the steps: deleting the steps shows it.
    Step.objects.filter(trace__agent=agent).delete()
    assert counts(agent_id=agent.pk, since=since, until=until).llm_outputs == 200
    assert raw_counts(agent_id=agent.pk, since=since, until=until).llm_outputs == 0


def test_spans_arriving_for_hours_already_rolled_are_counted_when_next_read(
    make_agent, traffic, django_capture_on_commit_callbacks
):
    agent = make_agent("late")
    traffic(agent, 50, *BASE, _llm())
    since, until = BASE[0], BASE[1]
    assert counts(agent_id=agent.pk, since=since, until=until).llm_outputs == 50
    with django_capture_on_commit_callbacks(execute=True):  # ingest's signal after commit, as in production
        traffic(agent, 30, *BASE, _llm())  # a spool drained after an outage: spans of hours already rolled
    assert counts(agent_id=agent.pk, since=since, until=until).llm_outputs == 80
