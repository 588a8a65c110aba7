"""A Pydantic AI agent that Firebreak can stop: FirebreakCapability on the agent.

    pip install "./sdk[pydantic-ai]"
    export FIREBREAK_URL=http://127.0.0.1:8000 FIREBREAK_API_KEY=... FIREBREAK_GATE_PUBLIC_KEY=...
    python examples/pydantic_ai_agent.py          # `manage.py createapikey --agent refund-agent --scopes ingest,gate`

The model here is a FunctionModel that asks for one tool call and then answers, so the example runs without a
model provider; pass your own model (e.g. ``"openai:gpt-4.1"``) instead. Kill the agent while it runs
(`firebreak kill refund-agent`) and the next model request or tool call raises and ends the run.
"""

from __future__ import annotations

import sys

from firebreak_sdk import FirebreakStop, Gate, Tracer
from firebreak_sdk.integrations.pydantic_ai import FirebreakCapability
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

AGENT = "refund-agent"


def lookup_order(order_id: str) -> str:
    """Look an order up by its id."""
    return f"order {order_id}: $30, paid on 2026-11-30"


def stand_in(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Asks for lookup_order once, then answers with what the tool said."""
    last = messages[-1].parts[-1]
    if isinstance(last, ToolReturnPart):
        return ModelResponse(parts=[TextPart(f"Found it: {last.content}")])
    return ModelResponse(parts=[ToolCallPart(tool_name="lookup_order", args={"order_id": "42"})])


def answer(question: str, *, session: str, user: str) -> str:
    gate, tracer = Gate.from_env(AGENT), Tracer.from_env(AGENT)
    agent = Agent(
        FunctionModel(stand_in),  # your model, e.g. "openai:gpt-4.1"
        tools=[lookup_order],
        capabilities=[FirebreakCapability(gate, tracer, session=session, user=user)],
    )
    try:
        return str(agent.run_sync(question).output)
    except FirebreakStop as stop:  # killed, paused, budget, blocked, unreadable gate: the run ended
        print(f"stopped: {stop}", file=sys.stderr)
        return gate.fallback_response()
    finally:
        tracer.close()
        gate.close()


if __name__ == "__main__":
    print(answer("Where is my order 42?", session="conv-1", user="user-1"))
