"""Building blocks for simulated agent traffic: the demo fleet and tests share them.

``trajectory_spans`` turns a compact description of an agent run into the
ingest ``Span`` objects a real instrumented agent would send, so demo data and
test data take the same ingest path as real spans.
"""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypedDict

from traces.ingest.spans import Span


class _RunFields(TypedDict):
    """What every span of the run repeats."""

    trace_id: str
    agent: str
    session_id: str
    user_id: str
    input_class: str
    prompt_version: str
    model_version: str


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(n * 4):0{n}x}"


def trajectory_spans(
    *,
    agent: str,
    steps: list[dict],
    trace_id: str | None = None,
    start: datetime | None = None,
    user_id: str = "",
    session_id: str = "",
    input_class: str = "",
    root_input: str = "",
    root_output: str = "",
    prompt_version: str = "",
    model_version: str = "",
    status: str = "ok",
    rng: random.Random | None = None,
) -> list[Span]:
    """Spans of one run: a root ``agent`` span with ``steps`` as its children, in order.

    Each step is a dict with ``kind`` (llm, tool, retrieval, decision, agent, other) and any of
    ``name``, ``tool``, ``args``, ``input``, ``output``, ``tokens_in``, ``tokens_out``, ``cost``,
    ``finish_reason``, ``model``, ``status`` ("ok"/"error"), ``error``, ``duration_ms``, ``agent_name``.
    ``status`` of the run: ok, error, killed, or running (the root span is not sent yet).
    """
    rng = rng or random.Random()
    trace_id = trace_id or _hex(rng, 32)
    start = start or datetime.now(UTC)
    root_id = _hex(rng, 16)
    common: _RunFields = {
        "trace_id": trace_id,
        "agent": agent,
        "session_id": session_id,
        "user_id": user_id,
        "input_class": input_class,
        "prompt_version": prompt_version,
        "model_version": model_version,
    }
    spans = []
    t = start + timedelta(milliseconds=5)
    for i, step in enumerate(steps):
        kind = step.get("kind", "other")
        duration = timedelta(milliseconds=step.get("duration_ms", 40))
        tool = step.get("tool", "")
        spans.append(
            Span(
                span_id=_hex(rng, 16),
                parent_span_id=root_id,
                name=step.get("name") or (f"execute_tool {tool}" if tool else f"{kind} {i + 1}"),
                start=t,
                end=t + duration,
                kind=kind,
                status=step.get("status", "ok"),
                error_message=step.get("error", ""),
                model=step.get("model", ""),
                agent_name=step.get("agent_name", ""),
                tool_name=tool,
                tool_arguments=step.get("args"),
                input=step.get("input", ""),
                output=step.get("output", ""),
                tokens_in=step.get("tokens_in", 0),
                tokens_out=step.get("tokens_out", 0),
                cost=Decimal(str(step.get("cost", 0))).quantize(Decimal("0.000001")),
                finish_reason=step.get("finish_reason", ""),
                attributes=step.get("attributes", {}),
                **common,
            )
        )
        t += duration + timedelta(milliseconds=step.get("gap_ms", 10))
    if status != "running":
        spans.insert(
            0,
            Span(
                span_id=root_id,
                name=f"invoke_agent {agent}",
                start=start,
                end=t + timedelta(milliseconds=5),
                kind="agent",
                status="error" if status == "error" else "ok",
                input=root_input,
                output=root_output,
                trace_status=status if status == "killed" else "",
                **common,
            ),
        )
    return spans
