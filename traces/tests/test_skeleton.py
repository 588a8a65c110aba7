"""The viewer's facts for a window of steps, computed in PostgreSQL, agree with the whole-trace skeleton."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from traces.models import Step, StepKind, Trace
from traces.selectors.trajectory import step_skeleton, step_skeleton_of

START = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def _tree_trace(agent, n: int) -> Trace:
    """A run whose steps nest (each under one of the last few), loop on identical tool calls now and then, and
    share start times (ties broken by id), with one step whose parent never arrived."""
    rng = random.Random(7)
    trace = Trace.objects.create(trace_id="tree", agent=agent, started_at=START)
    steps = []
    for i in range(n):
        span = f"{i:016x}"
        parent = "" if i == 0 else f"{rng.randint(max(0, i - 4), i - 1):016x}"
        if i == 17:
            parent = "ffffffffffffffff"  # an orphan: its parent never arrived
        tool = i % 3 != 0
        action = f"{(i // 6) % 4:016x}" if tool else ""  # runs of identical calls, repeated across the trace
        steps.append(
            Step(
                trace=trace,
                span_id=span,
                parent_span_id=parent,
                kind=StepKind.TOOL if tool else StepKind.LLM,
                name=f"step {i}",
                tool_name="lookup_order" if tool else "",
                action_hash=action,
                started_at=START + timedelta(milliseconds=i // 2),
            )
        )
    Step.objects.bulk_create(steps)
    return trace


@pytest.mark.django_db
@pytest.mark.parametrize("window", [range(0, 30), range(100, 150), range(250, 300), [17, 3, 299]])
def test_a_window_gets_the_same_positions_depths_children_loops_and_last_tools_as_the_whole_trace(agent, window):
    trace = _tree_trace(agent, 300)
    whole = step_skeleton(trace=trace)
    ids = [f"{i:016x}" for i in window]
    part = step_skeleton_of(trace=trace, span_ids=ids)
    assert part.total == whole.total == 300
    assert part.positions == {i: whole.positions[i] for i in ids}
    assert part.depths == {i: whole.depths[i] for i in ids}
    assert part.child_counts == {i: whole.child_counts[i] for i in ids if i in whole.child_counts}
    assert part.runs == {i: whole.runs[i] for i in ids if i in whole.runs}
    assert part.recent_tools == whole.recent_tools
    hashes = {s.action_hash for s in Step.objects.filter(trace=trace, span_id__in=ids)} - {""}
    assert part.hash_counts == {h: whole.hash_counts[h] for h in hashes}


@pytest.mark.django_db
def test_steps_not_in_the_trace_get_nothing_but_the_count(agent):
    trace = _tree_trace(agent, 5)
    part = step_skeleton_of(trace=trace, span_ids=["0000000000000bad"])
    assert (part.positions, part.depths, part.total) == ({}, {}, 5)
