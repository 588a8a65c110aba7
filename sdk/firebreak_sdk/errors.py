"""What the SDK raises to stop an agent.

Everything derives from :class:`FirebreakStop`: catch it once at the top of a
run, serve :meth:`Gate.fallback_response`, and let the run end. Never catch it
to carry on: the point of the exception is that the agent stops.

- :class:`GateClosed` — an operator (or the gate's absence) says stop:
  :class:`AgentKilled`, :class:`AgentPaused`, :class:`ToolDisabled`, :class:`ToolNotAllowed`,
  :class:`BudgetFrozen`, :class:`Blocked` (this session, user or tenant is
  blocked), :class:`NoHandlerForLevel`, and :class:`GateUnavailable` (the gate
  could not be read, so the SDK fails closed).
- :class:`GuardTripped` — a local guard found a runaway run:
  :class:`LoopDetected`, :class:`BudgetExceeded`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _restore(cls: type[BaseException], message: str, state: dict[str, Any]) -> BaseException:
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.__dict__.update(state)
    return exc


class FirebreakStop(Exception):
    """Base of everything the SDK raises to stop an agent."""

    def __reduce__(self) -> tuple[Callable[..., BaseException], tuple[Any, ...]]:
        # keyword-only constructors: pickle (multiprocessing, Celery) by state
        return (_restore, (type(self), str(self), dict(self.__dict__)))


class GateClosed(FirebreakStop):
    """The gate says stop. ``agent``, ``reason``, ``changed_by`` and ``version`` come from the gate document."""

    verb = "is closed"

    def __init__(
        self,
        agent: str,
        *,
        reason: str = "",
        changed_by: str = "",
        version: int | None = None,
        message: str | None = None,
    ) -> None:
        self.agent = agent
        self.reason = reason
        self.changed_by = changed_by
        self.version = version
        super().__init__(message or self._message())

    def _message(self) -> str:
        by = f" by {self.changed_by}" if self.changed_by else ""
        why = f": {self.reason}" if self.reason else ""
        return f"{self.agent} {self.verb}{by}{why}"


class AgentKilled(GateClosed):
    """The agent was killed (or the whole fleet stopped): stop now, do not retry."""

    verb = "was killed"


class AgentPaused(GateClosed):
    """The agent is paused (raised at once with ``on_pause="raise"``, after ``pause_timeout`` with ``"wait"``)."""

    verb = "is paused"


class ToolDisabled(GateClosed):
    """One tool was disabled for this agent; the rest of the agent may carry on."""

    def __init__(
        self,
        agent: str,
        tool: str,
        *,
        reason: str = "",
        changed_by: str = "",
        version: int | None = None,
    ) -> None:
        self.tool = tool
        super().__init__(agent, reason=reason, changed_by=changed_by, version=version)

    def _message(self) -> str:
        by = f" by {self.changed_by}" if self.changed_by else ""
        why = f": {self.reason}" if self.reason else ""
        return f"tool {self.tool} of {self.agent} was disabled{by}{why}"


class ToolNotAllowed(GateClosed):
    """The tool is not among the agent's ``allowed_tools``: that call is refused before it happens (the rest of
    the agent carries on). ``allowed`` lists the tools it may call."""

    def __init__(self, agent: str, tool: str, *, allowed: list[str] | None = None, version: int | None = None) -> None:
        self.tool = tool
        self.allowed = list(allowed or [])
        super().__init__(agent, reason="not among the allowed tools", version=version)

    def _message(self) -> str:
        shown = ", ".join(self.allowed[:10]) + (", …" if len(self.allowed) > 10 else "")
        return f"tool {self.tool} is not among {self.agent}'s allowed tools ({shown})"


class BudgetFrozen(GateClosed):
    """The agent's budget is frozen: new runs are refused, runs already in flight drain."""

    def _message(self) -> str:
        by = f" by {self.changed_by}" if self.changed_by else ""
        why = f": {self.reason}" if self.reason else ""
        return f"budget frozen: new runs refused for {self.agent}{by}{why}"


class Blocked(GateClosed):
    """This session, user or tenant is blocked (until ``expires_at``); other sessions of the agent carry on.

    ``kind`` is ``"session"``, ``"user"`` or ``"tenant"``; ``id`` the blocked one.
    """

    def __init__(
        self,
        agent: str,
        kind: str,
        id: str,
        *,
        expires_at: str = "",
        reason: str = "",
        changed_by: str = "",
        version: int | None = None,
    ) -> None:
        self.kind = kind
        self.id = id
        self.expires_at = expires_at
        super().__init__(agent, reason=reason, changed_by=changed_by, version=version)

    def _message(self) -> str:
        until = f" until {self.expires_at}" if self.expires_at else ""
        return f"{self.kind} {self.id} of {self.agent} is blocked{until}"


class NoHandlerForLevel(GateClosed):
    """``Gate.by_level`` found no handler at the agent's level of the fallback ladder, nor below it."""

    def __init__(self, agent: str, level: str, *, version: int | None = None) -> None:
        self.level = level
        super().__init__(agent, version=version)

    def _message(self) -> str:
        return f"{self.agent} runs at level {self.level!r} and no handler is given for it or any level below"


class GateUnavailable(GateClosed):
    """The gate could not be read (no configuration, no connection, timeout, bad value, HTTP error): fail closed.

    ``reason`` says what went wrong; the underlying exception, if any, is the ``__cause__``.
    """

    def _message(self) -> str:
        return f"gate of {self.agent} could not be read, failing closed: {self.reason}"


class GuardTripped(FirebreakStop):
    """A local guard stopped a runaway run. ``limit`` names the setting that tripped (e.g. ``"max_steps"``)."""

    def __init__(self, message: str, *, limit: str) -> None:
        self.limit = limit
        super().__init__(message)


class LoopDetected(GuardTripped):
    """:class:`~firebreak_sdk.LoopGuard` found a loop: too many steps, tokens, tool calls or repeated actions."""


class BudgetExceeded(GuardTripped):
    """:class:`~firebreak_sdk.BudgetGuard` refused a model call that would pass a hard cap."""
