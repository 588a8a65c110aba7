"""Local guards for one run: a loop detector and a hard budget. One instance per run; not shared across threads."""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from .errors import BudgetExceeded, LoopDetected

if TYPE_CHECKING:
    from .gate import Gate

__all__ = ["BudgetGuard", "LoopGuard", "action_hash", "canonical_json"]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal arguments, equal text (the server uses the same form)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def action_hash(tool_name: str, arguments: Any = None) -> str:
    """16 hex chars naming a tool call by tool and canonical arguments, exactly as the server computes it."""
    if not tool_name:
        return ""
    payload = tool_name + "\x00" + canonical_json(arguments if arguments is not None else {})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class LoopGuard:
    """Stops a run that loops. Every limit is optional (``None`` = no limit).

    ``max_steps``, ``max_tokens``, ``max_tool_calls``: at most that many per run; one more raises.
    ``max_duration``: seconds since the guard was created. ``max_consecutive_same_tool``: at most that many
    calls of one tool in a row. ``max_repeated_action``: this many identical calls in a row (same tool, same
    arguments) is a loop — with the default 3, the third identical call raises.
    Raises :class:`~firebreak_sdk.errors.LoopDetected`; its ``limit`` names the setting that tripped.
    """

    def __init__(
        self,
        max_steps: int | None = None,
        max_tokens: int | None = None,
        max_duration: float | None = None,
        max_tool_calls: int | None = None,
        max_consecutive_same_tool: int | None = None,
        max_repeated_action: int | None = 3,
    ) -> None:
        self.max_steps = max_steps
        self.max_tokens = max_tokens
        self.max_duration = max_duration
        self.max_tool_calls = max_tool_calls
        self.max_consecutive_same_tool = max_consecutive_same_tool
        self.max_repeated_action = max_repeated_action
        self.steps = 0
        self.tokens = 0
        self.tool_calls = 0
        self.started = time.monotonic()
        self._last_tool: str | None = None
        self._same_tool = 0
        self._last_action: str | None = None
        self._same_action = 0

    @property
    def elapsed(self) -> float:
        """Seconds since the guard was created."""
        return time.monotonic() - self.started

    def step(self, tokens: int = 0) -> None:
        """Count one step (and the tokens it used); raise ``LoopDetected`` if a limit is passed."""
        self.steps += 1
        self.tokens += tokens
        if self.max_steps is not None and self.steps > self.max_steps:
            raise LoopDetected(f"{self.steps} steps, over the cap of {self.max_steps} (max_steps)", limit="max_steps")
        if self.max_tokens is not None and self.tokens > self.max_tokens:
            raise LoopDetected(
                f"{self.tokens} tokens used, over the cap of {self.max_tokens} (max_tokens)", limit="max_tokens"
            )
        self._check_duration()

    def tool_call(self, name: str, arguments: Any = None) -> str:
        """Count one tool call; return its action hash; raise ``LoopDetected`` if a limit is passed."""
        digest = action_hash(name, arguments)
        self.tool_calls += 1
        self._same_tool = self._same_tool + 1 if name == self._last_tool else 1
        self._same_action = self._same_action + 1 if digest == self._last_action else 1
        self._last_tool, self._last_action = name, digest
        if self.max_repeated_action is not None and self._same_action >= self.max_repeated_action:
            raise LoopDetected(
                f"{name} called {self._same_action} times in a row with identical arguments",
                limit="max_repeated_action",
            )
        if self.max_consecutive_same_tool is not None and self._same_tool > self.max_consecutive_same_tool:
            raise LoopDetected(
                f"{name} called {self._same_tool} times in a row, "
                f"over the cap of {self.max_consecutive_same_tool} (max_consecutive_same_tool)",
                limit="max_consecutive_same_tool",
            )
        if self.max_tool_calls is not None and self.tool_calls > self.max_tool_calls:
            raise LoopDetected(
                f"{self.tool_calls} tool calls, over the cap of {self.max_tool_calls} (max_tool_calls)",
                limit="max_tool_calls",
            )
        self._check_duration()
        return digest

    def _check_duration(self) -> None:
        if self.max_duration is not None and (elapsed := self.elapsed) > self.max_duration:
            raise LoopDetected(
                f"running for {elapsed:.1f} s, over the cap of {self.max_duration:g} s (max_duration)",
                limit="max_duration",
            )


class BudgetGuard:
    """A run's hard budget: call :meth:`before_model_call` before and :meth:`record` after each model call.

    With a ``gate``, each cap not given here follows the gate document's ``budget`` (the gate's latest copy,
    so a cap an operator lowers mid-run applies at the next call). ``None`` means no cap. Make one guard per
    run, at its start: it remembers the caps the run started with, and once the budget is frozen after that
    (new runs refused) the run drains under those caps, whatever the frozen document says. The daily cap is
    enforced by the server (it pauses the agent), not here. Raises :class:`~firebreak_sdk.errors.BudgetExceeded`.
    """

    def __init__(
        self,
        gate: Gate | None = None,
        *,
        session_cost_cap: float | None = None,
        session_token_cap: int | None = None,
        session_step_cap: int | None = None,
    ) -> None:
        self.gate = gate
        self._explicit = {
            "session_cost_cap": session_cost_cap,
            "session_token_cap": session_token_cap,
            "session_step_cap": session_step_cap,
        }
        self._spent = 0.0
        self._tokens = 0
        self._steps = 0
        self._started_caps: dict[str, Any] = {}
        self._started_frozen = False
        if gate is not None:
            # Read the gate now if it was never read: a run without its caps fails closed.
            budget = gate._budget()
            self._started_caps = {name: budget.get(name) for name in self._explicit}
            self._started_frozen = bool(budget.get("frozen"))

    @property
    def spent(self) -> float:
        """Cost recorded so far in this run."""
        return self._spent

    @property
    def tokens(self) -> int:
        """Tokens recorded so far in this run."""
        return self._tokens

    @property
    def steps(self) -> int:
        """Model calls recorded so far in this run."""
        return self._steps

    @property
    def started_caps(self) -> dict[str, float | None]:
        """The gate document's caps when this run started (empty without a gate)."""
        return dict(self._started_caps)

    @property
    def caps(self) -> dict[str, float | None]:
        """The caps in force now: explicit ones, else the gate document's (the caps the run started with while
        a freeze that came after its start lasts: a run in flight drains, it is not cut)."""
        budget = self.gate._budget() if self.gate is not None else {}
        if budget.get("frozen") and not self._started_frozen:
            budget = self._started_caps
        return {name: value if value is not None else budget.get(name) for name, value in self._explicit.items()}

    def before_model_call(self, estimated_cost: float = 0.0, estimated_tokens: int = 0) -> None:
        """Raise ``BudgetExceeded`` if a cap is used up, or the run's spend plus the estimate would pass it."""
        caps = self.caps
        cost_cap, token_cap, step_cap = caps["session_cost_cap"], caps["session_token_cap"], caps["session_step_cap"]
        if cost_cap is not None and (self._spent >= cost_cap or self._spent + estimated_cost > cost_cap):
            raise BudgetExceeded(
                f"session cost cap: spent ${self._spent:.4f} + estimated ${estimated_cost:.4f} "
                f"would pass the ${cost_cap:.4f} cap",
                limit="session_cost_cap",
            )
        if token_cap is not None and (self._tokens >= token_cap or self._tokens + estimated_tokens > token_cap):
            raise BudgetExceeded(
                f"session token cap: {self._tokens} tokens + estimated {estimated_tokens} "
                f"would pass the {token_cap:g} cap",
                limit="session_token_cap",
            )
        if step_cap is not None and self._steps + 1 > step_cap:
            raise BudgetExceeded(
                f"session step cap: {self._steps} model calls made, the cap is {step_cap:g}",
                limit="session_step_cap",
            )

    def record(self, cost: float = 0.0, tokens: int = 0) -> None:
        """Add one model call's actual cost and tokens. Never raises: the next ``before_model_call`` does."""
        self._spent += cost
        self._tokens += tokens
        self._steps += 1
