"""``fleet_generate``: the deterministic plan of agents, span batches and failure examples for a seed and anchor."""

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from demo.fleet.agents import AGENTS, AGENTS_BY_SLUG, AgentSpec
from demo.fleet.failures import FAILURES, FailureExample, _Failures
from demo.fleet.runs import _Trace
from demo.fleet.traffic import _TRAFFIC, _Gen, _healthy
from traces.ingest.spans import Span
from traces.synthetic import trajectory_spans

BATCH_SPANS = 500
TARGET_TRACES = 3000
WINDOW = timedelta(hours=24)
RUNNING_TRACES = 8


@dataclass
class FleetPlan:
    seed: int
    anchor: datetime
    agents: list[AgentSpec]
    batches: list[list[Span]]
    failures: list[FailureExample]

    @property
    def trace_ids(self) -> list[str]:
        return list(dict.fromkeys(s.trace_id for batch in self.batches for s in batch))

    @property
    def span_count(self) -> int:
        return sum(len(batch) for batch in self.batches)


def _id_rng(seed: int, anchor: datetime) -> random.Random:
    digest = hashlib.sha256(f"firebreak-fleet|{seed}|{anchor.isoformat()}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _diurnal_start(rng: random.Random, anchor: datetime, latest: timedelta) -> datetime:
    """A start time in the window, more likely in (UTC) working hours."""
    while True:
        start = anchor - WINDOW + timedelta(seconds=rng.uniform(0, (WINDOW - latest).total_seconds()))
        hour = start.hour + start.minute / 60
        if rng.random() < 0.25 + 0.75 * max(0.0, math.sin(math.pi * (hour - 6) / 16)):
            return start


def fleet_generate(*, seed: int, anchor: datetime) -> FleetPlan:
    """The demo fleet for ``seed``, ending at ``anchor`` (timezone-aware): agents, span batches, failures.

    Pure and deterministic: the same seed and anchor give equal plans. Traces are ordered by start and
    batched whole, at most BATCH_SPANS spans per batch (no trace is larger). Every span ends before
    ``anchor``; running traces (no root span yet) started in its last few minutes.
    """
    if anchor.tzinfo is None:
        raise ValueError("anchor must be timezone-aware")
    anchor = anchor.astimezone(UTC)
    rng, ids = random.Random(seed), _id_rng(seed, anchor)
    gen = _Gen(rng, anchor)
    margin = timedelta(minutes=10)
    traces: list[_Trace] = []

    examples, failure_builders = [], _Failures(gen)
    for key, failure_class, description, minutes in FAILURES:
        group = getattr(failure_builders, key.replace("-", "_"))()
        base = anchor - timedelta(minutes=minutes, seconds=rng.uniform(-60, 60))
        for t in group:
            t.start, t.failure = base + t.offset, key
        traces.extend(group)
        examples.append((key, failure_class, description, group))

    builders, weights = list(_TRAFFIC), list(_TRAFFIC.values())
    healthy_target = TARGET_TRACES - len(traces) - RUNNING_TRACES
    made = 0
    while made < healthy_target:
        builder = rng.choices(builders, weights=weights)[0]
        user = gen.user()
        group = _healthy(gen, builder, user)
        start = _diurnal_start(rng, anchor, margin)
        session = f"sess-{ids.getrandbits(48):012x}"
        for t in group:
            t.start, t.session_id = start, session
            start = t.end + timedelta(milliseconds=rng.randint(20, 400))
        if builder == "support_triage" and rng.random() < 0.2:  # the customer writes back in the same session
            (follow,) = _healthy(gen, builder, user)
            follow.start, follow.session_id = start + timedelta(seconds=rng.randint(40, 400)), session
            if follow.end < anchor - margin:
                group.append(follow)
        traces.extend(group)
        made += len(group)

    single = [b for b in builders if b != "ops_pair"]
    for _ in range(RUNNING_TRACES):
        (t,) = _healthy(gen, rng.choice(single), gen.user())
        t.steps = t.steps[: max(1, len(t.steps) - rng.randint(1, 3))]
        t.status, t.root_output = "running", ""
        t.start = anchor - t.duration - timedelta(seconds=rng.uniform(2, 150))
        t.session_id = f"sess-{ids.getrandbits(48):012x}"
        traces.append(t)

    for t in traces:
        t.trace_id = f"{ids.getrandbits(128):032x}"
        if not t.session_id:
            t.session_id = f"sess-{ids.getrandbits(48):012x}"
        if not t.user_id:
            t.user_id = gen.user()
    failures = [
        FailureExample(key, failure_class, group[0].agent, tuple(t.trace_id for t in group), description)
        for key, failure_class, description, group in examples
    ]

    traces.sort(key=lambda t: (t.start, t.trace_id))
    batches: list[list[Span]] = [[]]
    for t in traces:
        spec = AGENTS_BY_SLUG[t.agent]
        spans = trajectory_spans(
            agent=t.agent,
            steps=t.steps,
            trace_id=t.trace_id,
            start=t.start,
            user_id=t.user_id,
            session_id=t.session_id,
            input_class=t.input_class,
            root_input=t.root_input,
            root_output=t.root_output,
            prompt_version=t.prompt_version or spec.prompt_version,
            model_version=spec.model_version,
            status=t.status,
            rng=ids,
        )
        if t.failure:
            spans[0].attributes = {"firebreak.demo.failure": t.failure}
        if len(batches[-1]) + len(spans) > BATCH_SPANS:
            batches.append([])
        batches[-1].extend(spans)
    return FleetPlan(seed=seed, anchor=anchor, agents=list(AGENTS), batches=batches, failures=failures)
