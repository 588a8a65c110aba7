"""``firebreak-llm-gateway``: an OpenAI-compatible proxy checking the agent's gate and budget before each model call.

An agent (any code, any framework) is made stoppable by pointing its OpenAI ``base_url`` at the gateway::

    firebreak-llm-gateway --agent refund-agent --upstream https://api.openai.com/v1 --listen 127.0.0.1:8787
    OpenAI(base_url="http://127.0.0.1:8787/v1", api_key=...)

For ``POST /v1/chat/completions`` (``stream: true`` too), ``/v1/responses`` and ``/v1/embeddings`` it

- checks the gate (:class:`~firebreak_sdk.gate.Gate`, subscribed: a kill arrives pushed) with the call's session
  and user (headers ``X-Firebreak-Session`` / ``X-Firebreak-User``, else the body's ``user``), and a ``tool_choice``
  that names a tool against the agent's allowed tools;
- keeps one :class:`~firebreak_sdk.guards.BudgetGuard` per session (caps from the gate; tokens and cost from the
  upstream's ``usage``, cost from ``--price``) and one run (trajectory) per session, ended when it is idle;
- forwards the call, and while a stream is relayed watches the gate: a kill cuts it (an SSE error event, then
  the upstream connection is closed);
- records one ``llm`` span per call (model, input messages, output text, tokens, cost, finish reason, duration).

A refused call never reaches the upstream; it is answered in OpenAI's error shape
``{"error": {"message", "type": "firebreak_gate_closed", "code": "<the stop's class>"}}`` with 403 (killed,
paused, blocked, tool not allowed or disabled), 429 (budget exceeded or frozen) or 503 (gate unreadable).
``GET /v1/models`` is passed through. Upstream key: ``FIREBREAK_UPSTREAM_API_KEY``, else the client's
``Authorization``. Firebreak credentials: ``FIREBREAK_URL``, ``FIREBREAK_API_KEY``, ``FIREBREAK_GATE_PUBLIC_KEY``.
"""

from .cli import build_parser, main
from .proxy import LLMGateway
from .shapes import Price, error_body, parse_price, refusal_status

__all__ = ["LLMGateway", "Price", "build_parser", "error_body", "main", "parse_price", "refusal_status"]
