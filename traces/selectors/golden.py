"""A run's golden trajectory (the known-good run of its agent and input class) and the tool-call diff against it."""

import json
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from traces.models import Step, Trace

DIFF_MAX_CALLS = 2000


def trace_golden_get(*, trace: Trace) -> Trace | None:
    """The golden trace of ``trace``'s agent and input class (possibly ``trace`` itself); None without one."""
    if not trace.input_class:
        return None
    return (
        Trace.objects.select_related("agent")
        .filter(agent_id=trace.agent_id, input_class=trace.input_class, is_golden=True)
        .order_by("-started_at", "-id")
        .first()
    )


@dataclass
class DiffCall:
    position: int
    span_id: str
    tool_name: str
    arguments: object
    status: str
    args_text: str = ""  # the arguments as the page shows them: set by traces.presentation.diff_decorate


@dataclass
class DiffRow:
    """One line of the side-by-side diff: ``kind`` is same, changed, missing, inserted or replaced."""

    kind: str
    golden: DiffCall | None
    this: DiffCall | None
    changed_keys: list[str]
    # Set by traces.presentation.diff_decorate on the first row of a run of identical rows: the others.
    repeats: list["DiffRow"] = field(default_factory=list)


@dataclass
class TrajectoryDiff:
    rows: list[DiffRow]
    counts: dict[str, int]
    golden_calls: int
    this_calls: int
    truncated: bool
    # The rows as the page shows them, a run of identical rows as its first (traces.presentation.diff_decorate).
    shown_rows: list[DiffRow] = field(default_factory=list)


def _tool_calls(trace: Trace) -> tuple[list[DiffCall], bool]:
    positions = {
        sid: i
        for i, sid in enumerate(
            Step.objects.filter(trace=trace).order_by("started_at", "id").values_list("span_id", flat=True), start=1
        )
    }
    rows = list(
        Step.objects.filter(trace=trace)
        .exclude(tool_name="")
        .order_by("started_at", "id")
        .values_list("span_id", "tool_name", "tool_arguments", "status")[: DIFF_MAX_CALLS + 1]
    )
    calls = [DiffCall(positions.get(r[0], 0), *r) for r in rows[:DIFF_MAX_CALLS]]
    return calls, len(rows) > DIFF_MAX_CALLS


def _changed_keys(a: object, b: object) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return sorted(k for k in set(a) | set(b) if _canonical(a.get(k, _MISSING)) != _canonical(b.get(k, _MISSING)))
    return ["(arguments)"]


_MISSING = object()


def _canonical(value: object) -> str:
    if value is _MISSING:
        return "\x00missing"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def trajectory_diff(*, trace: Trace, golden: Trace) -> TrajectoryDiff:
    """The tool-call sequence of ``trace`` aligned against ``golden``'s.

    Calls are aligned by tool name (difflib.SequenceMatcher, no junk heuristic: in an agent's
    trajectory the common tools are the signal), then aligned calls are compared by canonical
    arguments. Each sequence is cut at DIFF_MAX_CALLS calls (``truncated``).
    """
    left, cut_left = _tool_calls(golden)
    right, cut_right = _tool_calls(trace)
    matcher = SequenceMatcher(None, [c.tool_name for c in left], [c.tool_name for c in right], autojunk=False)
    rows: list[DiffRow] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for g, t in zip(left[i1:i2], right[j1:j2], strict=True):
                if _canonical(g.arguments) == _canonical(t.arguments):
                    rows.append(DiffRow("same", g, t, []))
                else:
                    rows.append(DiffRow("changed", g, t, _changed_keys(g.arguments, t.arguments)))
        elif tag == "delete":
            rows.extend(DiffRow("missing", g, None, []) for g in left[i1:i2])
        elif tag == "insert":
            rows.extend(DiffRow("inserted", None, t, []) for t in right[j1:j2])
        else:  # replace: a different tool where the golden run called another
            gs, ts = left[i1:i2], right[j1:j2]
            for k in range(max(len(gs), len(ts))):
                golden_call = gs[k] if k < len(gs) else None
                this_call = ts[k] if k < len(ts) else None
                kind = "replaced" if golden_call and this_call else ("missing" if golden_call else "inserted")
                rows.append(DiffRow(kind, golden_call, this_call, []))
    counts = {k: 0 for k in ("same", "changed", "missing", "inserted", "replaced")}
    for row in rows:
        counts[row.kind] += 1
    return TrajectoryDiff(
        rows=rows,
        counts=counts,
        golden_calls=len(left),
        this_calls=len(right),
        truncated=cut_left or cut_right,
    )
