"""Firebreak SDK: what an agent imports to be stoppable from outside its own reasoning.

- :class:`Gate` — the fail-closed kill switch check, before every step and tool call.
- :class:`LoopGuard`, :class:`BudgetGuard` — local guards that stop a runaway run.
- :class:`Tracer` — sends runs (an ``agent`` span and its steps) to Firebreak; :func:`configure_opentelemetry`
  for agents that already use OpenTelemetry.
- Exceptions: everything derives from :class:`FirebreakStop`.
"""

from .errors import (
    AgentKilled,
    AgentPaused,
    Blocked,
    BudgetExceeded,
    BudgetFrozen,
    FirebreakStop,
    GateClosed,
    GateUnavailable,
    GuardTripped,
    LoopDetected,
    NoHandlerForLevel,
    ToolDisabled,
    ToolNotAllowed,
)
from .gate import GENERIC_FALLBACK, Gate
from .guards import BudgetGuard, LoopGuard, action_hash, canonical_json
from .otel import configure_opentelemetry
from .spans import Run, Step
from .tracer import Tracer

__version__ = "0.1.0"

__all__ = [
    "GENERIC_FALLBACK",
    "AgentKilled",
    "AgentPaused",
    "Blocked",
    "BudgetExceeded",
    "BudgetFrozen",
    "BudgetGuard",
    "FirebreakStop",
    "Gate",
    "GateClosed",
    "GateUnavailable",
    "GuardTripped",
    "LoopDetected",
    "LoopGuard",
    "NoHandlerForLevel",
    "Run",
    "Step",
    "ToolDisabled",
    "ToolNotAllowed",
    "Tracer",
    "action_hash",
    "canonical_json",
    "configure_opentelemetry",
]
