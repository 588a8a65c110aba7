"""The blast radius query: each criterion, step criteria on one step, the window bounds."""

from datetime import timedelta

from incidents.blast_radius.selectors import blast_radius
from incidents.blast_radius.signature import BlastSignature, signature_parse
from incidents.blast_radius.tests.conftest import DECLARED, WINDOW
from traces.models import Step, Trace


def compute(**kw):
    window = {**WINDOW, **{k: kw.pop(k) for k in ("since", "until") if k in kw}}
    return blast_radius(signature=BlastSignature(**kw), **window)


def test_by_tool_name_counts_trajectories_users_and_running(world):
    _incident, runs = world
    result = compute(tool="issue_refund")
    assert result.trajectories == 4
    assert result.distinct_users == 3  # alice twice, bob, the formula-looking id
    assert result.still_running == 2
    assert result.user_ids == sorted(["u-alice", "u-bob", '=HYPERLINK("x")'])
    assert [t.trace_id for t in result.traces] == [runs[k].trace_id for k in ("r4", "r3", "r2", "r1")]
    assert {a["slug"]: a["running"] for a in result.running_agents} == {"refunds": 1, "support": 1}


def test_by_argument_substring_is_case_insensitive_and_regex(world):
    assert compute(args="vip override").trajectories == 2
    assert compute(args="B-9").trajectories == 1
    assert compute(args=r're:"amount": 9\d\d').trajectories == 2
    assert compute(args="re:^nothing$").trajectories == 0
    # A literal % is not a wildcard.
    assert compute(args="%").trajectories == 0


def test_the_regex_scans_a_bounded_head_of_the_arguments(world, settings):
    assert compute(args='re:"order_id": "B-9"').trajectories == 1
    settings.FIREBREAK_BLAST_REGEX_SCAN_CHARS = 5  # the order id lies past the first five
    assert compute(args='re:"order_id": "B-9"').trajectories == 0
    assert compute(args="B-9").trajectories == 1  # a substring search reads the whole text


def test_step_criteria_must_hold_on_the_same_step(world):
    assert compute(tool="search", args="refund").trajectories == 1
    assert compute(tool="issue_refund", args='"q": "refund"').trajectories == 0


def test_by_action_hash_of_a_flagged_step(world):
    incident, runs = world
    step = Step.objects.get(trace=runs["r1"], tool_name="issue_refund")
    Trace.objects.filter(pk=runs["r1"].pk).update(flagged_span_id=step.span_id)
    signature, since, until = signature_parse({"trace": runs["r1"].trace_id}, incident=incident, now=WINDOW["until"])
    assert signature.action_hash == step.action_hash
    result = blast_radius(signature=signature, since=since, until=until)
    # Same tool and canonical arguments: r1 only (r3's note differs in case).
    assert [t.trace_id for t in result.traces] == [runs["r1"].trace_id]
    assert compute(action_hash=step.action_hash, since=DECLARED - timedelta(days=3)).trajectories == 2


def test_by_versions_input_class_and_agents(world):
    assert compute(model_version="m-2").trajectories == 2
    assert compute(prompt_version="p-7").trajectories == 2
    assert compute(prompt_version="p-7", tool="issue_refund").trajectories == 1
    assert compute(input_class="refund_request").trajectories == 2
    assert compute(agents=("support",)).trajectories == 2
    assert compute(agents=("support", "refunds"), tool="issue_refund").trajectories == 4
    assert compute(agents=("idle",)).trajectories == 0


def test_window_bounds(world):
    assert compute(tool="issue_refund", since=DECLARED - timedelta(days=3)).trajectories == 5
    start = DECLARED - timedelta(hours=1)
    # since is inclusive, until exclusive.
    assert compute(tool="issue_refund", since=start, until=start + timedelta(minutes=5)).trajectories == 1
    assert (
        compute(
            tool="issue_refund", since=start + timedelta(minutes=5), until=start + timedelta(minutes=6)
        ).trajectories
        == 1
    )
