"""One simulated run of an agent (``_Run``) and the trace it becomes (``_Trace``)."""

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from demo.fleet.agents import _SYSTEMS, AGENTS_BY_SLUG, MODEL_PRICES

_WRITES = {
    "send_email", "create_ticket", "escalate_to_human", "issue_refund", "update_customer_record", "post_review_comment",
    "approve_pull_request", "merge_pull_request", "save_note", "create_invoice", "handoff", "scale_deployment",
    "restart_service", "update_ticket", "schedule_call", "create_plan",
}  # fmt: skip
_TRANSIENT = ["TimeoutError: tool call exceeded 10s", "HTTP 502 Bad Gateway", "HTTP 429 Too Many Requests"]
_FATAL = ["HTTP 503 Service Unavailable", "ConnectionResetError: connection reset by peer", "TimeoutError after 30s"]


class _Run:
    """The steps of one simulated run, tracking the context window it has built up."""

    def __init__(self, rng: random.Random, agent: str, *, flaky: bool = True):
        self.rng = rng
        self.agent = AGENTS_BY_SLUG[agent]
        self.flaky = flaky  # read tools fail transiently now and then (and are retried)
        self.steps: list[dict] = []
        self.context = rng.randint(900, 1800)  # system prompt and tool schemas

    def add(self, step: dict, duration: tuple[int, int] | int) -> dict:
        r = self.rng
        step["duration_ms"] = duration if isinstance(duration, int) else r.randint(*duration)
        step["gap_ms"] = r.randint(3, 40)
        self.steps.append(step)
        return step

    def llm(
        self,
        output: str,
        *,
        prompt: str = "",
        ratio: float | None = None,
        tokens_out: int | None = None,
        finish_reason: str = "stop",
        agent_name: str = "",
        max_tokens: int = 1024,
    ) -> dict:
        r, model = self.rng, self.agent.model_version
        tokens_in = self.context + r.randint(40, 260)
        if tokens_out is None:
            tokens_out = max(12, round(tokens_in / (ratio or r.uniform(4.2, 5.8))))
        price_in, price_out = MODEL_PRICES[model]
        cost = (tokens_in * price_in + tokens_out * price_out) / 1_000_000
        self.context = tokens_in + tokens_out
        attributes = {
            "gen_ai.system": _SYSTEMS[model.split("-")[0]],
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.request.temperature": 0.2,
        }
        return self.add(
            {
                "kind": "llm",
                "name": f"chat {model}",
                "model": model,
                "input": prompt,
                "output": output,
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "cost": cost,
                "finish_reason": finish_reason,
                "agent_name": agent_name,
                "attributes": attributes,
            },
            300 + int(tokens_out * r.uniform(6, 14)),
        )

    def tool(self, name: str, args: dict, result, *, think: bool = True, agent_name: str = "") -> dict:
        """A tool call, chosen by a model call unless one came just before (``think``).

        Read tools fail transiently now and then and are retried with the same arguments; writes never do.
        """
        r = self.rng
        if think and (not self.steps or self.steps[-1]["kind"] != "llm"):
            self.llm(json.dumps({"name": name, "arguments": args}), finish_reason="tool_calls", agent_name=agent_name)
        step = {"kind": "tool", "tool": name, "args": args, "agent_name": agent_name}
        if self.flaky and name not in _WRITES and r.random() < 0.02:
            self.add(step | {"status": "error", "error": r.choice(_TRANSIENT)}, (800, 10_000))
        output = result if isinstance(result, str) else json.dumps(result)
        self.context += len(output) // 4 + 30
        return self.add(step | {"output": output}, (40, 900))

    def guard(self, name: str, error: str) -> None:
        """A framework guard that stopped the run."""
        self.add({"kind": "decision", "name": f"guard {name}", "status": "error", "error": error}, 2)

    def answer(self, text: str, *, guardrail: bool = False) -> None:
        """The final model call; customer-facing agents run an output guardrail on it."""
        self.llm(text)
        if guardrail:
            verdict = {"flagged": False, "categories": [], "pii_detected": False}
            self.add({"kind": "decision", "name": "guardrail output_check", "output": json.dumps(verdict)}, (15, 90))

    def retrieve(self, index: str, query: str, docs: list[dict]) -> dict:
        output = json.dumps(docs)
        self.context += len(output) // 4
        return self.add(
            {
                "kind": "retrieval",
                "name": f"retrieve {index}",
                "input": query,
                "output": output,
                "attributes": {"retrieval.index": index, "retrieval.top_k": len(docs)},
            },
            (60, 400),
        )


@dataclass
class _Trace:
    agent: str
    input_class: str
    root_input: str
    root_output: str
    steps: list[dict]
    user_id: str = ""
    session_id: str = ""
    status: str = "ok"
    prompt_version: str = ""
    start: datetime | None = None
    offset: timedelta = timedelta(0)  # failure clusters: start after the cluster's base time
    trace_id: str = ""
    failure: str = ""

    @property
    def duration(self) -> timedelta:
        return timedelta(milliseconds=10 + sum(s["duration_ms"] + s["gap_ms"] for s in self.steps))

    @property
    def end(self) -> datetime:
        assert self.start is not None, "a trace is placed in time before its end is read"
        return self.start + self.duration
