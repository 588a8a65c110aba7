"""An OpenAI Agents SDK agent that Firebreak can stop: FirebreakRunHooks on the run, guard_tools on its tools.

    pip install "./sdk[openai-agents]"
    export FIREBREAK_URL=http://127.0.0.1:8000 FIREBREAK_API_KEY=... FIREBREAK_GATE_PUBLIC_KEY=...
    python examples/openai_agents_agent.py        # `manage.py createapikey --agent refund-agent --scopes ingest,gate`

The model here is a stand-in Model that asks for one tool call and then answers, so the example runs without
an OpenAI key (and with the SDK's own trace export off); drop ``model=`` to use OpenAI. Kill the agent while it
runs (`firebreak kill refund-agent`): the next tool call trips the Firebreak tool guardrail
(``ToolInputGuardrailTripwireTriggered``), the next model call raises ``AgentKilled``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from agents.models.interface import Model
from firebreak_sdk import FirebreakStop, Gate, Tracer
from firebreak_sdk.integrations.openai_agents import FirebreakRunHooks, guard_tools
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from agents import (
    Agent,
    ModelResponse,
    Runner,
    ToolInputGuardrailTripwireTriggered,
    Usage,
    function_tool,
    set_tracing_disabled,
)

AGENT = "refund-agent"


@function_tool
def lookup_order(order_id: str) -> str:
    """Look an order up by its id."""
    return f"order {order_id}: $30, paid on 2026-11-30"


class StandInModel(Model):
    """Asks for lookup_order once, then answers with what the tool said."""

    async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> ModelResponse:
        usage = Usage(requests=1, input_tokens=50, output_tokens=12, total_tokens=62)
        last = input[-1] if isinstance(input, list) and input else {}
        if isinstance(last, dict) and last.get("type") == "function_call_output":
            text = ResponseOutputText(type="output_text", text=f"Found it: {last['output']}", annotations=[])
            item: Any = ResponseOutputMessage(type="message", id="m1", role="assistant", status="completed",
                                              content=[text])  # fmt: skip
        else:
            item = ResponseFunctionToolCall(type="function_call", id="f1", call_id="c1", name="lookup_order",
                                            arguments=json.dumps({"order_id": "42"}), status="completed")  # fmt: skip
        return ModelResponse(output=[item], usage=usage, response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def answer(question: str, *, session: str, user: str) -> str:
    gate, tracer = Gate.from_env(AGENT), Tracer.from_env(AGENT)
    hooks = FirebreakRunHooks(gate, tracer, session=session, user=user)
    agent = Agent(name="refunds", instructions="Help with orders.", model=StandInModel(),
                  tools=guard_tools([lookup_order], hooks))  # fmt: skip
    try:
        return str(Runner.run_sync(agent, question, hooks=hooks).final_output)
    except ToolInputGuardrailTripwireTriggered as tripped:  # killed or paused at a tool call
        print(f"stopped: {tripped.output.output_info}", file=sys.stderr)
        return gate.fallback_response()
    except FirebreakStop as stop:  # killed or paused at a model call, budget, unreadable gate
        print(f"stopped: {stop}", file=sys.stderr)
        return gate.fallback_response()
    finally:
        tracer.close()
        gate.close()


if __name__ == "__main__":
    set_tracing_disabled(True)  # the stand-in needs no OpenAI trace export; Firebreak gets the spans
    print(answer("Where is my order 42?", session="conv-1", user="user-1"))
