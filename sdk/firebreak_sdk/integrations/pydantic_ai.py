"""Pydantic AI: a capability that puts the gate, the budget guard and the tracer in every agent run.

```python
from pydantic_ai import Agent
from firebreak_sdk import FirebreakStop, Gate, Tracer
from firebreak_sdk.integrations.pydantic_ai import FirebreakCapability

gate, tracer = Gate.from_env("refund-agent"), Tracer.from_env("refund-agent")
agent = Agent(model, tools=[lookup_order, refund],
              capabilities=[FirebreakCapability(gate, tracer, session="conv-7", user="user-42")])
try:
    result = agent.run_sync(question)
except FirebreakStop as stop:  # killed or paused (at a model or tool call), budget exceeded
    answer = gate.fallback_response()
```

Pydantic AI's own lifecycle hooks (``pydantic_ai.capabilities.AbstractCapability``):

- ``wrap_run``: ``gate.begin_run()`` (a frozen budget refuses the run), a :class:`~firebreak_sdk.BudgetGuard`
  from the gate's caps, and ``tracer.run(session_id=, user_id=)`` around the run; the run ends with the
  output, or with the error that ended it (a gate stop: a ``killed`` trajectory);
- ``before_model_request``: ``gate.check(session=, user=)`` and ``budget.before_model_call()``: a stop raised
  here ends the run; ``after_model_request``: the response's usage goes to ``budget.record()`` and an llm span;
- ``before_tool_execute``: ``gate.check(tool=name, session=, user=)`` before the tool runs. A tool outside
  ``allowed_tools`` or disabled is skipped (``SkipToolExecution``: the model gets the refusal as the tool's
  result and the run goes on); a kill or a pause is raised and ends the run. Each is a refusal span;
- ``after_tool_execute`` / ``on_tool_execute_error``: a tool span.

Each run works on its own copy of the capability (``for_run``), so one agent can serve many conversations at
once: give ``session=`` and ``user=`` as functions of the run's context (``lambda ctx: ctx.deps.user_id``).
``capability.last_run`` is the latest run's.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.exceptions import SkipToolExecution

from ..errors import FirebreakStop, GateClosed, ToolDisabled, ToolNotAllowed
from ..gate import Gate
from ..guards import BudgetGuard
from ..spans import Run
from ..tracer import Tracer

__all__ = ["FirebreakCapability"]

Price = Callable[[str | None, int, int], float]
Who = str | Callable[[Any], str | None] | None  # an id, or a function of the run's RunContext giving it


class FirebreakCapability(AbstractCapability[Any]):
    """Gate checks before every model request and tool call, the budget guard, a Firebreak run per agent run.

    ``session`` / ``user`` / ``tenant`` go to every check and to the run: each a string, or a function of the
    run's ``RunContext`` (``session=lambda ctx: ctx.deps.conversation_id``) for an agent that serves many
    conversations; each run gets its own copy of the capability (``for_run``). ``price(model, tokens_in,
    tokens_out)`` returns a model call's cost (without it only tokens and steps count). ``tracer`` None: no
    spans, enforcement only.
    """

    def __init__(
        self,
        gate: Gate,
        tracer: Tracer | None = None,
        *,
        session: Who = None,
        user: Who = None,
        tenant: Who = None,
        name: str | None = None,
        price: Price | None = None,
        estimated_cost: float = 0.0,
    ) -> None:
        self.gate = gate
        self.tracer = tracer
        self._who = {"session": session, "user": user, "tenant": tenant}
        self.session = session if isinstance(session, str) else None
        self.user = user if isinstance(user, str) else None
        self.tenant = tenant if isinstance(tenant, str) else None
        self.name = name
        self.price = price
        self.estimated_cost = estimated_cost
        self.run: Run | None = None  # the Firebreak run in progress
        self.last_run: Run | None = None  # the latest, in progress or ended
        self.budget: BudgetGuard | None = None
        self._llm_started = 0.0
        self._tools: dict[str, float] = {}
        self._parent: FirebreakCapability | None = None

    async def for_run(self, ctx: Any) -> FirebreakCapability:
        """A copy for this run (an agent may serve several runs at once), with ``session``, ``user`` and
        ``tenant`` read from the run's context where they were given as functions of it."""
        mine = copy.copy(self)
        mine._parent = self
        mine.run = mine.budget = None
        mine._tools = {}
        for kind, given in self._who.items():
            setattr(mine, kind, given(ctx) if callable(given) else given)
        return mine

    def _check(self, tool: str | None = None) -> None:
        self.gate.check(tool, session=self.session, user=self.user, tenant=self.tenant)

    # --- the run ---------------------------------------------------------------------------------------------

    async def wrap_run(self, ctx: Any, *, handler: Any) -> Any:
        if self.tracer is not None:
            self.run = self.last_run = self.tracer.run(
                self.name, session_id=self.session, user_id=self.user, input=_plain(getattr(ctx, "prompt", None))
            )
            if self._parent is not None:
                self._parent.last_run = self.run
        try:
            self.gate.begin_run()
            self._check()
            self.budget = BudgetGuard(self.gate)
            result = await handler()
        except BaseException as error:
            self._end(error=error)
            raise
        self._end(output=getattr(result, "output", None))
        return result

    def _end(self, *, output: Any = None, error: BaseException | None = None) -> None:
        run, self.run, self.budget = self.run, None, None
        self._tools.clear()
        if run is not None:
            if output is not None:
                run.output = _plain(output)
            if error is not None:
                run.set_error(error)
            run.end()

    # --- model requests --------------------------------------------------------------------------------------

    async def before_model_request(self, ctx: Any, request_context: Any) -> Any:
        self._check()
        if self.budget is not None:
            self.budget.before_model_call(estimated_cost=self.estimated_cost)
        self._llm_started = time.monotonic()
        return request_context

    async def after_model_request(self, ctx: Any, *, request_context: Any, response: Any) -> Any:
        usage = getattr(response, "usage", None)
        tokens_in = int(getattr(usage, "input_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "output_tokens", 0) or 0)
        model = getattr(response, "model_name", None)
        cost = self.price(model, tokens_in, tokens_out) if self.price is not None else None
        if self.budget is not None:
            self.budget.record(cost=cost or 0.0, tokens=tokens_in + tokens_out)
        if self.run is not None:
            self.run.llm(
                model=model,
                input=_last_request(getattr(request_context, "messages", None) or getattr(ctx, "messages", None)),
                output=_output(response),
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost=cost,
                finish_reason=getattr(response, "finish_reason", None),
                duration=time.monotonic() - self._llm_started,
            )
        return response

    # --- tool calls ----------------------------------------------------------------------------------------

    async def before_tool_execute(self, ctx: Any, *, call: Any, tool_def: Any, args: Any) -> Any:
        name = call.tool_name
        try:
            self._check(name)
        except (ToolNotAllowed, ToolDisabled) as stop:  # that call only: the model gets the refusal, the run goes on
            if self.run is not None:
                self.run.refused(stop, _args(call), tool=name)
            raise SkipToolExecution(f"Refused by Firebreak: {stop}") from stop
        except GateClosed as stop:  # killed, paused, blocked, unreadable: the run ends
            if self.run is not None:
                self.run.refused(stop, _args(call), tool=name)
            raise
        self._tools[call.tool_call_id] = time.monotonic()
        return args

    async def after_tool_execute(self, ctx: Any, *, call: Any, tool_def: Any, args: Any, result: Any) -> Any:
        started = self._tools.pop(call.tool_call_id, time.monotonic())
        if self.run is not None:
            self.run.tool(call.tool_name, _args(call), output=_plain(result), duration=time.monotonic() - started)
        return result

    async def on_tool_execute_error(self, ctx: Any, *, call: Any, tool_def: Any, args: Any, error: Exception) -> Any:
        started = self._tools.pop(call.tool_call_id, time.monotonic())
        if self.run is not None and not isinstance(error, FirebreakStop):
            self.run.tool(call.tool_name, _args(call), error=error, duration=time.monotonic() - started)
        raise error


# --- reading Pydantic AI's objects ---------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | dict | list | type(None)) else str(value)


def _args(call: Any) -> Any:
    try:
        return call.args_as_dict()
    except Exception:  # args that are not a JSON object: record them as they came
        return _plain(call.args)


def _output(response: Any) -> Any:
    """A response's text, else the tool calls it asked for."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in getattr(response, "parts", None) or []:
        kind = getattr(part, "part_kind", "")
        if kind == "text":
            texts.append(part.content)
        elif kind == "tool-call":
            calls.append({"name": part.tool_name, "arguments": _args(part)})
    return "".join(texts) or calls or None


def _last_request(messages: Any) -> Any:
    """The content of the last part sent to the model (the user's prompt or a tool's return)."""
    if not messages:
        return None
    parts = getattr(messages[-1], "parts", None) or []
    return _plain(getattr(parts[-1], "content", None)) if parts else None
