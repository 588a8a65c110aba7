"""The OpenAI Agents SDK: run hooks and a tool input guardrail that put the gate, the budget and the tracer in a run.

```python
from agents import Runner
from firebreak_sdk import FirebreakStop, Gate, Tracer
from firebreak_sdk.integrations.openai_agents import FirebreakRunHooks, guard_tools

gate, tracer = Gate.from_env("refund-agent"), Tracer.from_env("refund-agent")
hooks = FirebreakRunHooks(gate, tracer, session="conv-7", user="user-42")
agent = Agent(name="refunds", tools=guard_tools([lookup_order, refund], hooks), model=...)
try:
    result = await Runner.run(agent, question, hooks=hooks)
except ToolInputGuardrailTripwireTriggered as tripped:  # killed or paused at a tool call
    stop = tripped.output.output_info  # the FirebreakStop, with the kill's reason
except FirebreakStop as stop:  # killed or paused at a model call, budget exceeded
    ...
```

- ``on_agent_start`` (the first of a run) opens a Firebreak run: ``gate.begin_run()`` (a frozen budget refuses
  it), a :class:`~firebreak_sdk.BudgetGuard` from the gate's caps, ``tracer.run(session_id=, user_id=)``;
  ``on_agent_end`` ends it with the final output.
- ``on_llm_start``: ``gate.check(session=, user=)`` and ``budget.before_model_call()``; a stop raised here
  aborts ``Runner.run``. ``on_llm_end``: ``response.usage`` goes to ``budget.record()`` and an llm span.
- every tool from :func:`guard_tools` carries :attr:`FirebreakRunHooks.tool_guardrail`, the Agents SDK's own
  tool input guardrail: ``gate.check(tool=name, session=, user=)`` before the tool runs. A tool outside
  ``allowed_tools`` or disabled is rejected (``reject_content``: the model is told why, the tool does not
  run, the run goes on); a kill or pause trips the wire (``raise_exception``: ``Runner.run`` raises
  ``ToolInputGuardrailTripwireTriggered`` whose ``output.output_info`` is the stop). Each is a refusal span.
  ``on_tool_start`` checks again for tools without the guardrail (raising the stop).
- ``on_tool_end``: a tool span with its arguments and output.

A run stopped by the gate ends as a ``killed`` trajectory. One hooks object per conversation, one run at a
time. :class:`FirebreakTracingProcessor` instead sends the Agents SDK's own traces (its generation,
response and function spans) as Firebreak runs, for agents that keep their own hooks.
"""

from __future__ import annotations

import copy
import importlib
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ..errors import FirebreakStop, GateClosed, ToolDisabled, ToolNotAllowed
from ..gate import Gate
from ..guards import BudgetGuard
from ..spans import Run
from ..tracer import Tracer

# The Agents SDK's import name is ``agents``, which in Firebreak's own repository is also the name of its
# Django app: imported by name at run time (in the agent's environment it is the Agents SDK), so that the
# repository's type check does not read the app in its place.
_sdk: Any = importlib.import_module("agents")
RunHooks: Any = _sdk.RunHooks
FunctionTool: Any = _sdk.FunctionTool
ToolInputGuardrail: Any = _sdk.ToolInputGuardrail
ToolGuardrailFunctionOutput: Any = _sdk.ToolGuardrailFunctionOutput
TracingProcessor: Any = _sdk.TracingProcessor

__all__ = ["FirebreakRunHooks", "FirebreakTracingProcessor", "guard_tools"]

Price = Callable[[str | None, int, int], float]
_GUARDRAIL = "firebreak_gate"


class FirebreakRunHooks(RunHooks):
    """Run hooks: gate checks before every model and tool call, the budget guard, a Firebreak run per run.

    ``session`` / ``user`` / ``tenant`` go to every check and to the run. ``price(model, tokens_in,
    tokens_out)`` returns a model call's cost (without it only tokens and steps count). ``tracer`` None: no
    spans, enforcement only.
    """

    def __init__(
        self,
        gate: Gate,
        tracer: Tracer | None = None,
        *,
        session: str | None = None,
        user: str | None = None,
        tenant: str | None = None,
        name: str | None = None,
        price: Price | None = None,
        estimated_cost: float = 0.0,
    ) -> None:
        super().__init__()
        self.gate = gate
        self.tracer = tracer
        self.session = session
        self.user = user
        self.tenant = tenant
        self.name = name
        self.price = price
        self.estimated_cost = estimated_cost
        self.run: Run | None = None  # the Firebreak run in progress
        self.last_run: Run | None = None  # the latest, in progress or ended
        self.budget: BudgetGuard | None = None
        self._llm_started = 0.0
        self._llm_input: Any = None
        self._tools: dict[str, tuple[float, Any]] = {}
        self._checked: set[str] = set()  # tool calls the guardrail already let through
        self.tool_guardrail: Any = ToolInputGuardrail(guardrail_function=self._guardrail, name=_GUARDRAIL)

    # --- the run ---------------------------------------------------------------------------------------------

    def _begin(self, agent: Any, input: Any = None) -> None:
        if self.run is not None or self.budget is not None:
            return
        if self.tracer is not None:
            self.run = self.last_run = self.tracer.run(
                self.name or getattr(agent, "name", None), session_id=self.session, user_id=self.user, input=input
            )
        try:
            self.gate.begin_run()
            self._check()
            self.budget = BudgetGuard(self.gate)
        except FirebreakStop as stop:
            self.end(error=stop)
            raise

    def end(self, *, output: Any = None, error: BaseException | None = None) -> None:
        """End the Firebreak run (the hooks do at the final output and at a stop they raise; call it after
        ``Runner.run`` raised anything else). The next run of these hooks starts afresh."""
        run, self.run, self.budget = self.run, None, None
        self._tools.clear()
        self._checked.clear()
        if run is not None:
            if output is not None:
                run.output = output if isinstance(output, str) else str(output)
            if error is not None:
                run.set_error(error)
            run.end()

    def _check(self, tool: str | None = None) -> None:
        self.gate.check(tool, session=self.session, user=self.user, tenant=self.tenant)

    def _refuse(self, stop: GateClosed, tool: str, arguments: Any) -> None:
        if self.run is not None:
            self.run.refused(stop, arguments, tool=tool)

    # --- hooks ---------------------------------------------------------------------------------------------

    async def on_agent_start(self, context: Any, agent: Any) -> None:
        self._begin(agent)

    async def on_agent_end(self, context: Any, agent: Any, output: Any) -> None:
        self.end(output=output)

    async def on_llm_start(self, context: Any, agent: Any, system_prompt: str | None, input_items: list[Any]) -> None:
        self._begin(agent)
        try:
            self._check()
            if self.budget is not None:
                self.budget.before_model_call(estimated_cost=self.estimated_cost)
        except FirebreakStop as stop:
            self.end(error=stop)
            raise
        self._llm_started = time.monotonic()
        self._llm_input = _last_input(input_items)

    async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
        usage = getattr(response, "usage", None)
        tokens_in = int(getattr(usage, "input_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "output_tokens", 0) or 0)
        model = _model_name(agent)
        cost = self.price(model, tokens_in, tokens_out) if self.price is not None else None
        if self.budget is not None:
            self.budget.record(cost=cost or 0.0, tokens=tokens_in + tokens_out)
        if self.run is not None:
            output, finish_reason = _output(response)
            self.run.llm(
                model=model,
                input=self._llm_input,
                output=output,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost=cost,
                finish_reason=finish_reason,
                duration=time.monotonic() - self._llm_started,
            )

    async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
        name, call_id, arguments = _call(context, tool)
        if call_id not in self._checked:  # a tool without the guardrail: check here, and raise the stop
            try:
                self._check(name)
            except GateClosed as stop:
                self._refuse(stop, name, arguments)
                self.end(error=stop)
                raise
        self._checked.discard(call_id)
        self._tools[call_id] = (time.monotonic(), arguments)

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: object) -> None:
        name, call_id, arguments = _call(context, tool)
        started, arguments = self._tools.pop(call_id, (time.monotonic(), arguments))
        if self.run is not None:
            self.run.tool(name, arguments, output=_plain(result), duration=time.monotonic() - started)

    # --- the tool input guardrail ------------------------------------------------------------------------------

    def _guardrail(self, data: Any) -> Any:
        name, call_id, arguments = _call(data.context, None)
        try:
            self._check(name)
        except (ToolNotAllowed, ToolDisabled) as stop:  # that call only: the model is told, the run goes on
            self._refuse(stop, name, arguments)
            return ToolGuardrailFunctionOutput.reject_content(f"Refused by Firebreak: {stop}", output_info=stop)
        except GateClosed as stop:  # killed, paused, blocked, unreadable: the tripwire ends the run
            self._refuse(stop, name, arguments)
            self.end(error=stop)
            return ToolGuardrailFunctionOutput.raise_exception(output_info=stop)
        self._checked.add(call_id)
        return ToolGuardrailFunctionOutput.allow()


def guard_tools(tools: Sequence[Any], hooks: FirebreakRunHooks) -> list[Any]:
    """Copies of the function tools, each with ``hooks.tool_guardrail`` (and no other Firebreak guardrail, so
    tools guarded for an earlier run can be guarded again) in its ``tool_input_guardrails``; the caller's
    tools are left as they were. Other kinds of tool are returned as they are: the hooks' ``on_tool_start``
    checks them."""
    guarded: list[Any] = []
    for tool in tools:
        if isinstance(tool, FunctionTool):
            tool = copy.copy(tool)
            others = [g for g in tool.tool_input_guardrails or [] if getattr(g, "name", None) != _GUARDRAIL]
            tool.tool_input_guardrails = [*others, hooks.tool_guardrail]
        guarded.append(tool)
    return guarded


class FirebreakTracingProcessor(TracingProcessor):
    """Sends the Agents SDK's traces to Firebreak: a run per trace, an llm step per generation or response
    span, a tool step per function span. ``agents.add_trace_processor(FirebreakTracingProcessor(tracer))``
    (or ``set_trace_processors([...])`` to send them nowhere else). For agents that do not use
    :class:`FirebreakRunHooks` with a tracer (both would record each step twice). The session is the
    trace's ``group_id``; the user its metadata's ``user_id``."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.last_run: Run | None = None  # the run of the latest trace started
        self._runs: dict[str, Run] = {}

    def on_trace_start(self, trace: Any) -> None:
        metadata = getattr(trace, "metadata", None) or {}
        self._runs[trace.trace_id] = self.last_run = self.tracer.run(
            getattr(trace, "name", None), session_id=getattr(trace, "group_id", None), user_id=metadata.get("user_id")
        )

    def on_trace_end(self, trace: Any) -> None:
        run = self._runs.pop(trace.trace_id, None)
        if run is not None:
            run.end()

    def on_span_start(self, span: Any) -> None:
        return None

    def on_span_end(self, span: Any) -> None:
        run = self._runs.get(span.trace_id)
        if run is None:
            return
        data = span.span_data
        kind = getattr(data, "type", "")
        error = span.error.get("message") if isinstance(span.error, dict) else None
        duration = _duration(span)
        if kind == "function":
            arguments = _json(getattr(data, "input", None))
            run.tool(data.name, arguments, output=_plain(data.output), error=error, duration=duration)
        elif kind == "generation":
            usage = data.usage or {}
            run.llm(
                model=data.model,
                input=_plain(data.input),
                output=_plain(data.output),
                tokens_in=usage.get("input_tokens"),
                tokens_out=usage.get("output_tokens"),
                error=error,
                duration=duration,
            )
        elif kind == "response":
            response = getattr(data, "response", None)
            usage = getattr(response, "usage", None)
            run.llm(
                model=getattr(response, "model", None),
                output=_plain(getattr(response, "output_text", None)),
                tokens_in=getattr(usage, "input_tokens", None),
                tokens_out=getattr(usage, "output_tokens", None),
                error=error,
                duration=duration,
            )

    def shutdown(self) -> None:
        self.tracer.flush()

    def force_flush(self) -> None:
        self.tracer.flush()


# --- reading the Agents SDK's objects ---------------------------------------------------------------------------


def _call(context: Any, tool: Any) -> tuple[str, str, Any]:
    """(tool name, call id, arguments) from a ToolContext (or the tool itself, for other tool kinds)."""
    name = str(getattr(context, "tool_name", None) or getattr(tool, "name", None) or "tool")
    call_id = str(getattr(context, "tool_call_id", None) or id(context))
    return name, call_id, _json(getattr(context, "tool_arguments", None))


def _json(text: Any) -> Any:
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | dict | list | type(None)) else str(value)


def _model_name(agent: Any) -> str | None:
    model = getattr(agent, "model", None)
    if isinstance(model, str):
        return model
    return getattr(model, "model", None) or getattr(model, "name", None) or (type(model).__name__ if model else None)


def _last_input(items: list[Any]) -> Any:
    if not items:
        return None
    last = items[-1]
    if isinstance(last, dict):
        return last.get("content") if "content" in last else last.get("output", last)
    return _plain(last)


def _output(response: Any) -> tuple[Any, str | None]:
    """(output, finish reason) of a ModelResponse: its text, else the tool calls it asked for."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in getattr(response, "output", None) or []:
        kind = getattr(item, "type", None)
        if kind == "message":
            texts += [part.text for part in getattr(item, "content", []) if getattr(part, "type", "") == "output_text"]
        elif kind == "function_call":
            calls.append({"name": item.name, "arguments": _json(item.arguments)})
    if calls:
        return ("".join(texts) or calls), "tool_calls"
    return "".join(texts), "stop"


def _duration(span: Any) -> float | None:
    try:
        started = datetime.fromisoformat(span.started_at)
        ended = datetime.fromisoformat(span.ended_at)
    except (TypeError, ValueError):
        return None
    return (ended - started).total_seconds()
