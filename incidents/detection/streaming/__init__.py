"""Streaming detectors: each looks only at the traces of one committed batch (``incidents.detection.runner``).

Importing this package registers them. A detector reads ``steps_of(trace)``: the trace's steps in order,
loaded once for the whole batch by the runner.
"""

from incidents.detection.streaming import (  # noqa: F401
    action_repeat,
    context_growth,
    daily_cost_cap,
    injection,
    model_change,
    ping_pong,
    refusal_burst,
    session_caps,
    token_ratio,
    tool_errors,
    tool_not_allowed,
    truncation,
)
