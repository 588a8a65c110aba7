"""LangGraph and LangChain: a callback handler that puts the gate, the budget guard and the tracer in every run.

```python
from firebreak_sdk import FirebreakStop, Gate, Tracer
from firebreak_sdk.integrations.langgraph import FirebreakCallbackHandler

gate, tracer = Gate.from_env("refund-agent"), Tracer.from_env("refund-agent")
handler = FirebreakCallbackHandler(gate, tracer, session="conv-7", user="user-42")
try:
    graph.invoke({"messages": [("user", question)]}, config={"callbacks": [handler]})
except FirebreakStop as stop:  # killed, paused, tool refused, budget: LangGraph aborted the run
    answer = gate.fallback_response()
```

What the handler does (``raise_error = True``, so an exception it raises aborts the LangChain/LangGraph run):

- the first callback of a run (the root chain, or a bare model or tool call) opens a Firebreak run —
  ``gate.begin_run()`` (a frozen budget refuses it), a :class:`~firebreak_sdk.BudgetGuard` from the gate's
  caps, and ``tracer.run(session_id=, user_id=)``; the root's end (or error) ends it;
- ``on_chat_model_start`` / ``on_llm_start``: ``gate.check(session=, user=)`` and
  ``budget.before_model_call()`` before the model is called;
- ``on_llm_end``: the usage (``usage_metadata``, or ``llm_output["token_usage"]``) goes to
  ``budget.record()`` and an llm span; ``price(model, tokens_in, tokens_out)`` prices it if given;
- ``on_tool_start``: ``gate.check(tool=name, session=, user=)`` before the tool runs: a disabled tool,
  one outside ``allowed_tools`` (``ToolNotAllowed``), a kill or a pause is recorded with ``run.refused``
  and raised, so the tool never runs;
- ``on_tool_end`` / ``on_tool_error``: a tool span with the arguments and the output or error.

A run stopped by the gate ends as a ``killed`` trajectory. One handler per conversation (it holds the
current run); a run at a time. :func:`guard_tools` wraps tools so that they check the gate themselves,
also where no handler is passed.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tools import BaseTool, StructuredTool

from ..errors import GateClosed
from ..gate import Gate
from ..guards import BudgetGuard
from ..spans import Run
from ..tracer import Tracer

__all__ = ["FirebreakCallbackHandler", "guard_tools"]

Price = Callable[[str | None, int, int], float]


class FirebreakCallbackHandler(BaseCallbackHandler):
    """Gate checks before every model and tool call, the budget guard, and a Firebreak run per LangChain run.

    ``gate``: the agent's :class:`~firebreak_sdk.Gate`; ``tracer``: its :class:`~firebreak_sdk.Tracer` (None:
    no spans). ``session`` / ``user`` / ``tenant`` go to every check (a blocked one raises ``Blocked``) and
    to the run; without ``session``, a LangGraph run's ``thread_id`` (``config["configurable"]``) is its
    session. ``price(model, tokens_in, tokens_out)`` returns a model call's cost for the budget and the
    span (without it only tokens and steps count). ``estimated_cost`` is passed to
    ``before_model_call`` so a call that would pass the cost cap is refused before it is made.
    """

    raise_error = True  # an exception raised here aborts the run: that is how the gate stops LangChain
    run_inline = True  # in an async run too, check in order, before the call, on the caller's thread

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
        self.gate = gate
        self.tracer = tracer
        self._session = session
        self.session = session  # the run's: ``session``, else LangGraph's thread_id
        self.user = user
        self.tenant = tenant
        self.name = name
        self.price = price
        self.estimated_cost = estimated_cost
        self.run: Run | None = None  # the Firebreak run in progress
        self.last_run: Run | None = None  # the latest, in progress or ended (its trace_id links the trajectory)
        self.budget: BudgetGuard | None = None
        self._root: UUID | None = None
        self._llm: dict[UUID, tuple[float, str | None, Any]] = {}
        self._tools: dict[UUID, tuple[float, str, Any]] = {}

    # --- the run ---------------------------------------------------------------------------------------

    def _begin(
        self, run_id: UUID, parent_run_id: UUID | None, name: str, input: Any, metadata: dict[str, Any] | None = None
    ) -> None:
        """Open a Firebreak run at the root of a LangChain run (the first callback without a parent)."""
        if parent_run_id is not None or self._root is not None:
            return
        self._root = run_id
        thread = (metadata or {}).get("thread_id")  # LangGraph's conversation: config["configurable"]["thread_id"]
        self.session = self._session or (str(thread) if thread is not None else None)
        self._llm.clear()
        self._tools.clear()
        if self.tracer is not None:
            self.run = self.last_run = self.tracer.run(
                self.name or name, session_id=self.session, user_id=self.user, input=_plain(input)
            )
        try:
            self.gate.begin_run()
            self.gate.check(session=self.session, user=self.user, tenant=self.tenant)
            self.budget = BudgetGuard(self.gate)
        except GateClosed as stop:
            self._finish(run_id, error=stop)
            raise

    def _finish(self, run_id: UUID, *, output: Any = None, error: BaseException | None = None) -> None:
        if run_id != self._root:
            return
        run, self.run, self._root, self.budget = self.run, None, None, None
        if run is not None:
            if output is not None:
                run.output = _plain(output)
            if error is not None:
                run.set_error(error)
            run.end()

    def _check(self, tool: str | None = None) -> None:
        self.gate.check(tool, session=self.session, user=self.user, tenant=self.tenant)

    # --- chains (the graph and its nodes) ------------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: dict[str, Any] | Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        name = str(kwargs.get("name") or (serialized or {}).get("name") or "")
        self._begin(run_id, parent_run_id, name, inputs, kwargs.get("metadata"))

    def on_chain_end(self, outputs: dict[str, Any] | Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, output=_last_message(outputs))

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, error=error)

    # --- model calls -----------------------------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        inputs = [{"role": m.type, "content": _text(m.content)} for m in (messages[0] if messages else [])]
        self._model_start(run_id, parent_run_id, serialized, metadata, kwargs, inputs)

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._model_start(run_id, parent_run_id, serialized, metadata, kwargs, prompts[0] if prompts else None)

    def _model_start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        serialized: dict[str, Any] | None,
        metadata: dict[str, Any] | None,
        kwargs: dict[str, Any],
        inputs: Any,
    ) -> None:
        model = _model_name(serialized, metadata, kwargs)
        self._begin(run_id, parent_run_id, model or "llm", inputs)
        self._check()
        if self.budget is not None:
            self.budget.before_model_call(estimated_cost=self.estimated_cost)
        self._llm[run_id] = (time.monotonic(), model, inputs)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        started, model, inputs = self._llm.pop(run_id, (time.monotonic(), None, None))
        tokens_in, tokens_out, finish_reason, output, model = _usage(response, model)
        cost = self.price(model, tokens_in, tokens_out) if self.price is not None else None
        if self.budget is not None:
            self.budget.record(cost=cost or 0.0, tokens=tokens_in + tokens_out)
        if self.run is not None:
            self.run.llm(
                model=model,
                input=inputs,
                output=output,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost=cost,
                finish_reason=finish_reason,
                duration=time.monotonic() - started,
            )
        self._finish(run_id, output=output)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        started, model, inputs = self._llm.pop(run_id, (time.monotonic(), None, None))
        if self.run is not None:
            self.run.llm(model=model, input=inputs, error=error, duration=time.monotonic() - started)
        self._finish(run_id, error=error)

    # --- tool calls ------------------------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = str(kwargs.get("name") or (serialized or {}).get("name") or "tool")
        arguments: Any = inputs if inputs is not None else input_str
        self._begin(run_id, parent_run_id, name, arguments)
        try:
            self._check(name)
        except GateClosed as stop:
            if self.run is not None:
                self.run.refused(stop, arguments, tool=name)
            raise
        self._tools[run_id] = (time.monotonic(), name, arguments)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        started, name, arguments = self._tools.pop(run_id, (time.monotonic(), str(kwargs.get("name") or "tool"), None))
        content = getattr(output, "content", output)  # a ToolMessage when called with a tool call
        if self.run is not None:
            self.run.tool(name, arguments, output=_plain(content), duration=time.monotonic() - started)
        self._finish(run_id, output=content)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        started, name, arguments = self._tools.pop(run_id, (time.monotonic(), str(kwargs.get("name") or "tool"), None))
        if self.run is not None:
            self.run.tool(name, arguments, error=error, duration=time.monotonic() - started)
        self._finish(run_id, error=error)


def guard_tools(
    tools: Sequence[BaseTool | Callable[..., Any]],
    gate: Gate,
    *,
    session: str | None = None,
    user: str | None = None,
    tenant: str | None = None,
) -> list[BaseTool]:
    """The same tools, each checking ``gate.check(tool=name, session=, user=, tenant=)`` before it runs.

    Plain functions become tools first (``StructuredTool.from_function``). The check raises inside the tool,
    so a tool stays guarded wherever it is called from, with or without :class:`FirebreakCallbackHandler`
    (which checks earlier, in ``on_tool_start``). The stop propagates: LangGraph's ``ToolNode`` re-raises it
    by default and the run aborts; a ``ToolNode(handle_tool_errors=True)`` hands the refusal to the model
    instead, and a killed agent is stopped at its next model call.
    """
    guarded: list[BaseTool] = []
    for tool in tools:
        base = tool if isinstance(tool, BaseTool) else StructuredTool.from_function(tool)
        guarded.append(_guard_tool(base, gate, session=session, user=user, tenant=tenant))
    return guarded


def _guard_tool(tool: BaseTool, gate: Gate, *, session: str | None, user: str | None, tenant: str | None) -> BaseTool:
    name = tool.name

    def check() -> None:
        gate.check(name, session=session, user=user, tenant=tenant)

    guarded = tool.model_copy()  # a copy: the caller's tool is left as it was
    if isinstance(guarded, StructuredTool) and guarded.func is not None:
        func = guarded.func

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            check()
            return func(*args, **kwargs)

        guarded.func = run
    if isinstance(guarded, StructuredTool) and guarded.coroutine is not None:
        coroutine = guarded.coroutine

        @functools.wraps(coroutine)
        async def arun(*args: Any, **kwargs: Any) -> Any:
            check()
            return await coroutine(*args, **kwargs)

        guarded.coroutine = arun
    if not isinstance(guarded, StructuredTool):
        original = type(tool)._run

        def run_method(self: BaseTool, *args: Any, **kwargs: Any) -> Any:
            check()
            return original(self, *args, **kwargs)

        object.__setattr__(guarded, "_run", run_method.__get__(guarded))
    return guarded


# --- reading LangChain's objects ------------------------------------------------------------------------------


def _text(content: Any) -> str:
    """A message's text: a string, or the text blocks of a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [b if isinstance(b, str) else str(b.get("text", "")) for b in content if isinstance(b, str | dict)]
        return "".join(parts)
    return "" if content is None else str(content)


def _plain(value: Any) -> Any:
    """Something JSON can carry: messages become their text; the rest is left to the tracer's encoder."""
    if isinstance(value, BaseMessage):
        return _text(value.content)
    if isinstance(value, dict) and "messages" in value:
        return _last_message(value)
    return value


def _last_message(outputs: Any) -> Any:
    """A graph's answer: the text of the last message of its ``messages`` state, else the output as it is."""
    messages = outputs.get("messages") if isinstance(outputs, dict) else None
    if isinstance(messages, list) and messages and isinstance(messages[-1], BaseMessage):
        return _text(messages[-1].content)
    if isinstance(outputs, BaseMessage):
        return _text(outputs.content)
    return outputs if isinstance(outputs, str | int | float | bool | type(None)) else None


def _model_name(
    serialized: dict[str, Any] | None, metadata: dict[str, Any] | None, kwargs: dict[str, Any]
) -> str | None:
    params = kwargs.get("invocation_params") or {}
    for candidate in (
        (metadata or {}).get("ls_model_name"),
        params.get("model") if isinstance(params, dict) else None,
        params.get("model_name") if isinstance(params, dict) else None,
        kwargs.get("name"),
        (serialized or {}).get("name"),
    ):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def _usage(response: LLMResult, model: str | None) -> tuple[int, int, str | None, Any, str | None]:
    """(tokens in, tokens out, finish reason, output, model) of a model call, from what LangChain returned."""
    tokens_in = tokens_out = 0
    finish_reason: str | None = None
    output: Any = None
    seen_usage = False
    for generations in response.generations:
        for generation in generations:
            info = generation.generation_info or {}
            finish_reason = finish_reason or info.get("finish_reason")
            if isinstance(generation, ChatGeneration):
                message = generation.message
                usage = getattr(message, "usage_metadata", None)
                if usage:
                    seen_usage = True
                    tokens_in += int(usage.get("input_tokens") or 0)
                    tokens_out += int(usage.get("output_tokens") or 0)
                meta = message.response_metadata or {}
                finish_reason = finish_reason or meta.get("finish_reason") or meta.get("stop_reason")
                model = meta.get("model_name") or meta.get("model") or model
                calls = getattr(message, "tool_calls", None) or []
                text = _text(message.content)
                output = text or [{"name": c["name"], "arguments": c["args"]} for c in calls] or output
            else:
                output = generation.text or output
    if not seen_usage:
        usage = (response.llm_output or {}).get("token_usage") or {}
        tokens_in = int(usage.get("prompt_tokens") or 0)
        tokens_out = int(usage.get("completion_tokens") or 0)
    return tokens_in, tokens_out, finish_reason, output, model
