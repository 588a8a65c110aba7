"""The span API an agent records with: a :class:`Run` (the root ``agent`` span of one trajectory) and its
:class:`Step` objects. An ended span is encoded at once and handed to its :class:`~firebreak_sdk.tracer.Tracer`."""

from __future__ import annotations

import logging
import secrets
import time
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, Generic, Literal, ParamSpec, cast, overload

from .encode import KINDS, STATUSES, describe_error, encode_span, iso_time
from .errors import GateClosed

if TYPE_CHECKING:  # the tracer makes runs, so it imports this module; the type is only for annotations
    from .tracer import Tracer

__all__ = ["Run", "Step"]

log = logging.getLogger("firebreak_sdk.tracer")  # the tracer's logger: one name for everything tracing logs

_P = ParamSpec("_P")


class _Span:
    """What a run and its steps share: identity, timing, the fields the server stores, and child steps."""

    kind = "other"

    def __init__(
        self,
        tracer: Tracer,
        trace_id: str,
        parent_span_id: str | None,
        name: str,
        *,
        start_ns: int | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        self._tracer = tracer
        self.trace_id = trace_id
        self.span_id = secrets.token_hex(8)
        self.parent_span_id = parent_span_id
        self.name = name
        self.input: Any = None
        self.output: Any = None
        self.status: str | None = None  # None: "error" if an error was recorded, else "ok"
        self.error: Any = None  # an exception or a message
        self.attributes: dict[str, Any] = dict(attributes or {})
        self.ended = False
        self._start_ns = start_ns if start_ns is not None else time.time_ns()
        self._start_mono = time.monotonic_ns()
        self._end_ns: int | None = None  # set for a step recorded after the fact; else timed when it ends

    # children ---------------------------------------------------------------------------------------------

    def step(
        self,
        kind: str = "other",
        name: str | None = None,
        *,
        tool: str | None = None,
        arguments: Any = None,
        model: str | None = None,
        input: Any = None,
        agent_name: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Step:
        """Start a child step; use it as a context manager (``with run.step("tool", tool="x") as s:``), or call
        :meth:`Step.end`. It is timed from now until it ends; an exception inside ``with`` marks it ``error``.
        ``kind``: llm, tool, retrieval, decision, agent or other."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(sorted(KINDS))}, not {kind!r}")
        step = Step(self._tracer, self.trace_id, self.span_id, name or tool or model or agent_name or kind, kind=kind)
        step._tool_name = tool if tool is not None else (name if kind == "tool" else None)
        step.arguments = arguments
        step.model = model
        step.input = input
        step.agent_name = agent_name
        step.attributes.update(attributes or {})
        return step

    def llm(
        self,
        name: str | None = None,
        *,
        model: str | None = None,
        input: Any = None,
        output: Any = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        cost: float | None = None,
        finish_reason: str | None = None,
        status: str | None = None,
        error: Any = None,
        duration: float | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Step:
        """Record a model call that just finished (``duration``: the seconds it took, if known)."""
        step = self._finished("llm", name or model or "llm", duration, status, attributes)
        step.model, step.input, step.output = model, input, output
        step.tokens_in, step.tokens_out, step.cost, step.finish_reason = tokens_in, tokens_out, cost, finish_reason
        step.end(error=error)
        return step

    def tool(
        self,
        name: str,
        arguments: Any = None,
        *,
        output: Any = None,
        status: str | None = None,
        error: Any = None,
        duration: float | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Step:
        """Record a tool call that just finished: tool ``name``, its ``arguments`` (an object or array), its
        ``output``; ``error`` (an exception or a message) marks it failed."""
        step = self._finished("tool", name, duration, status, attributes)
        step._tool_name, step.arguments, step.output = name, arguments, output
        step.end(error=error)
        return step

    def refused(self, stop: GateClosed, arguments: Any = None, *, tool: str | None = None) -> Step:
        """Record a tool call the gate refused before it happened (``ToolNotAllowed``, ``ToolDisabled``, a kill or
        pause met at the call): a ``tool`` step with status error, the stop's message as its error and the
        attribute ``firebreak.refused`` naming the stop, so the incident shows what was stopped. The run is not
        ended: a refused call is the agent's to answer (another tool, or the stop)."""
        name = tool or getattr(stop, "tool", None) or "tool"
        attributes = {"firebreak.refused": type(stop).__name__, "firebreak.refusal_reason": str(stop)}
        return self.tool(name, arguments, error=str(stop), duration=0, attributes=attributes)

    def _finished(
        self, kind: str, name: str, duration: float | None, status: str | None, attributes: dict[str, Any] | None
    ) -> Step:
        now = time.time_ns()
        start = now
        if duration is not None:
            try:
                start = now - max(0, int(float(duration) * 1e9))
            except (TypeError, ValueError, OverflowError):
                start = now
            start = max(start, self._start_ns)  # a step does not start before its parent
        step = Step(self._tracer, self.trace_id, self.span_id, name, kind=kind, start_ns=start, attributes=attributes)
        step._end_ns = now
        step.status = status
        return step

    # ending -------------------------------------------------------------------------------------------------

    def set_error(self, error: Any) -> None:
        """Mark this span failed (an exception or a message) without raising, e.g. after catching a stop."""
        self.error = error
        self.status = "error"

    def end(self, *, status: str | None = None, error: Any = None) -> None:
        """End the span and hand it to the tracer (once; later calls do nothing). Never raises for I/O."""
        if self.ended:
            return
        if error is not None:
            self.set_error(error)
        if status is not None:
            self.status = status
        if self.status is not None and self.status not in STATUSES:
            raise ValueError(f"status must be one of ok, error, unset, not {self.status!r}")
        self.ended = True
        try:
            end_ns = self._end_ns
            if end_ns is None:  # the monotonic clock times the span: a wall-clock step cannot make it end early
                end_ns = self._start_ns + max(0, time.monotonic_ns() - self._start_mono)
            fields = {
                "trace_id": self.trace_id,
                "span_id": self.span_id,
                "parent_span_id": self.parent_span_id,
                "name": self.name,
                "start_time": iso_time(self._start_ns),
                "end_time": iso_time(max(end_ns, self._start_ns)),
                "agent": self._tracer.agent,
                "kind": self.kind,
                "status": self.status or ("error" if self.error is not None else "ok"),
                "error_message": describe_error(self.error) if self.error is not None else None,
                "input": self.input,
                "output": self.output,
                "attributes": self.attributes or None,
                **self._fields(),
            }
            data = encode_span(fields)
        except Exception:
            log.exception("firebreak tracer: could not encode span %s; dropped", self.name)
            self._tracer._count_dropped()
            return
        self._tracer._emit(data)

    def _fields(self) -> dict[str, Any]:
        return {}

    def __enter__(self) -> _Span:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: types.TracebackType | None
    ) -> Literal[False]:
        if exc is not None:
            self._on_exception(exc)
        self.end()
        return False

    def _on_exception(self, exc: BaseException) -> None:
        self.set_error(exc)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} {self.name!r} {self.trace_id}/{self.span_id}>"


class _ToolField(Generic[_P]):
    """``tool`` on a :class:`Step` is two documented things: the method ``step.tool(name, arguments, ...)``, which
    records a finished child tool call as on a run, and the field ``step.tool = "name"``, the step's own tool.
    A plain attribute for the field hid the method (``step.tool(...)`` raised ``TypeError``), so this descriptor
    keeps both: reading ``step.tool`` gives the method, assigning it sets the tool name the step is sent with."""

    def __init__(self, method: Callable[Concatenate[_Span, _P], Step]) -> None:
        self._method = method

    @overload
    def __get__(self, step: None, owner: type[Step]) -> Callable[Concatenate[_Span, _P], Step]: ...
    @overload
    def __get__(self, step: Step, owner: type[Step]) -> Callable[_P, Step]: ...
    def __get__(
        self, step: Step | None, owner: type[Step]
    ) -> Callable[Concatenate[_Span, _P], Step] | Callable[_P, Step]:
        if step is None:
            return self._method
        # bound as Python binds any method; MethodType does not carry the signature, the cast restores it
        return cast("Callable[_P, Step]", types.MethodType(self._method, step))

    def __set__(self, step: Step, tool_name: str | None) -> None:
        step._tool_name = tool_name


class Step(_Span):
    """One step of a run (a model call, a tool call, ...). Set its fields before it ends:
    ``output``, ``tokens_in``, ``tokens_out``, ``cost``, ``finish_reason``, ``model``, ``tool``, ``arguments``,
    ``input``, ``agent_name``, ``attributes``, ``status``, ``error``. Steps can have child steps, and
    ``step.tool(name, arguments, ...)`` records a child tool call (assigning ``step.tool`` sets the step's tool)."""

    tool = _ToolField(_Span.tool)

    def __init__(
        self,
        tracer: Tracer,
        trace_id: str,
        parent_span_id: str,
        name: str,
        *,
        kind: str,
        start_ns: int | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(tracer, trace_id, parent_span_id, name, start_ns=start_ns, attributes=attributes)
        self.kind = kind
        self._tool_name: str | None = None  # the step's own tool, set with `step.tool = name` (see _ToolField)
        self.arguments: Any = None
        self.model: str | None = None
        self.agent_name: str | None = None
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.cost: float | None = None
        self.finish_reason: str | None = None

    def __enter__(self) -> Step:
        return self

    def _fields(self) -> dict[str, Any]:
        return {
            "tool_name": self._tool_name,
            "tool_arguments": self.arguments,
            "model": self.model,
            "agent_name": self.agent_name,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost": self.cost,
            "finish_reason": self.finish_reason,
        }


class Run(_Span):
    """The root ``agent`` span of one run (one trajectory in Firebreak). Set ``run.output`` to the answer.

    On an exception inside ``with tracer.run(...)`` the run ends with status ``error``; on a
    :class:`~firebreak_sdk.errors.GateClosed` (killed, paused, tool disabled, frozen, gate unreadable) the
    trajectory is marked ``killed``. An agent that catches the stop itself calls :meth:`set_error` with it.
    """

    kind = "agent"

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        input_class: str | None = None,
        input: Any = None,
        prompt_version: str | None = None,
        model_version: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(tracer, secrets.token_hex(16), None, name, attributes=attributes)
        self.session_id = session_id
        self.user_id = user_id
        self.input_class = input_class
        self.input = input
        self.prompt_version = prompt_version
        self.model_version = model_version
        self.trace_status: str | None = None  # "killed" after a GateClosed; otherwise from the root's status

    def __enter__(self) -> Run:
        return self

    def set_error(self, error: Any) -> None:
        """Mark the run failed; with a :class:`~firebreak_sdk.errors.GateClosed` the trajectory becomes ``killed``."""
        super().set_error(error)
        if isinstance(error, GateClosed):
            self.trace_status = "killed"

    def _fields(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "user_id": self.user_id,
            "input_class": self.input_class,
            "prompt_version": self.prompt_version,
            "model_version": self.model_version,
            "trace_status": self.trace_status,
        }
