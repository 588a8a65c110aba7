"""traces.presentation: runs of identical steps collapse to one row, nothing else does."""

import pytest

from traces.presentation import diff_decorate, step_identity, steps_collapse
from traces.selectors import trajectory
from traces.selectors.golden import DiffCall, DiffRow, TrajectoryDiff

pytestmark = pytest.mark.django_db


def test_consecutive_equal_keys_make_one_run_and_every_item_stays():
    runs = steps_collapse(["a", "b", "b", "b", "a", "b"], key=lambda x: x)
    assert runs == [["a"], ["b", "b", "b"], ["a"], ["b"]]


def test_items_without_a_key_never_join_a_run():
    assert steps_collapse([1, 1, 1], key=lambda x: None) == [[1], [1], [1]]


def test_empty_input_has_no_runs():
    assert steps_collapse([], key=lambda x: x) == []


def test_tool_steps_are_identical_by_action_hash_other_steps_by_kind_name_and_output():
    call = {"kind": "tool", "name": "t", "tool_name": "lookup_order", "action_hash": "abc", "status": "ok"}
    assert step_identity(**call, output="x") == step_identity(**call, output="y")  # same call, any output
    assert step_identity(**call, output="x") != step_identity(**{**call, "action_hash": "abd"}, output="x")
    assert step_identity(**{**call, "status": "error"}, output="x") != step_identity(**call, output="x")
    llm = {"kind": "llm", "name": "plan", "tool_name": "", "action_hash": ""}
    assert step_identity(**llm, output="same") == step_identity(**llm, output="same")
    assert step_identity(**llm, output="same") != step_identity(**llm, output="other")


def test_a_50_call_loop_in_the_viewer_is_one_head_and_49_collapsed(make_agent, make_spans, ingest, client, responder):
    make_agent("loop-bot")
    steps = [{"kind": "llm", "name": "plan", "output": "go"}]
    steps += [{"kind": "tool", "tool": "lookup_order", "args": {"order_id": "A-17"}, "output": "pending"}] * 50
    steps += [{"kind": "tool", "tool": "lookup_order", "args": {"order_id": "B-2"}, "output": "shipped"}]
    ingest(make_spans(agent="loop-bot", trace_id="d4" * 16, steps=steps))
    client.force_login(responder)
    response = client.get(f"/traces/{'d4' * 16}/?agent=loop-bot")
    body = response.content.decode()
    assert body.count("×50 identical") == 1
    assert body.count("data-collapsed-in=") == 49
    assert trajectory.FIRST_SCREEN_STEPS >= 52  # the whole run is on the first screen of this test


def _call(position, tool="lookup_order", args=None):
    return DiffCall(position, f"s{position:015d}", tool, args or {"order_id": "A-17"}, "ok")


def test_the_golden_diff_shows_a_run_of_identical_rows_as_one_with_the_others_inside():
    rows = [DiffRow("same", _call(1), _call(1), [])]
    rows += [DiffRow("inserted", None, _call(i), []) for i in range(2, 51)]
    rows += [DiffRow("inserted", None, _call(51, args={"order_id": "B-2"}), [])]
    diff = diff_decorate(TrajectoryDiff(rows=rows, counts={}, golden_calls=1, this_calls=51, truncated=False))
    assert [r.kind for r in diff.shown_rows] == ["same", "inserted", "inserted"]
    assert len(diff.shown_rows[1].repeats) == 48  # "x49 identical": the first and 48 more
    assert diff.shown_rows[1].repeats[-1].this.position == 50
    assert diff.shown_rows[2].repeats == []
    assert len(diff.rows) == 51  # the counts still count every call
