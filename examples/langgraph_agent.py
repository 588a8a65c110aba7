"""A LangGraph agent that Firebreak can stop: FirebreakCallbackHandler on every run, guard_tools on its tools.

    pip install "./sdk[langgraph]"
    export FIREBREAK_URL=http://127.0.0.1:8000 FIREBREAK_API_KEY=... FIREBREAK_GATE_PUBLIC_KEY=...
    python examples/langgraph_agent.py            # `manage.py createapikey --agent refund-agent --scopes ingest,gate`

The model here is a stand-in that asks for one tool call and then answers, so the example runs without a
model provider; put your own chat model (anything with ``bind_tools``) in ``model()``. Kill the agent while it
runs (`firebreak kill refund-agent`) and the next model or tool call raises, LangGraph aborts the run, and
the user gets the fallback answer.
"""

from __future__ import annotations

import sys
from typing import Any

from firebreak_sdk import FirebreakStop, Gate, Tracer
from firebreak_sdk.integrations.langgraph import FirebreakCallbackHandler, guard_tools
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

AGENT = "refund-agent"


def lookup_order(order_id: str) -> str:
    """Look an order up by its id."""
    return f"order {order_id}: $30, paid on 2026-11-30"


class StandInModel(BaseChatModel):
    """Asks for lookup_order once, then answers with what the tool said."""

    @property
    def _llm_type(self) -> str:
        return "stand-in"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        usage = {"input_tokens": 50, "output_tokens": 12, "total_tokens": 62}
        if isinstance(messages[-1], ToolMessage):
            message = AIMessage(content=f"Found it: {messages[-1].content}", usage_metadata=usage)
        else:
            call = {"name": "lookup_order", "args": {"order_id": "42"}, "id": "call-1", "type": "tool_call"}
            message = AIMessage(content="", tool_calls=[call], usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=message)])


def model() -> BaseChatModel:
    return StandInModel()  # e.g. ChatOpenAI(model="gpt-4.1") from langchain-openai


def build(gate: Gate, *, session: str, user: str) -> Any:
    tools = guard_tools([lookup_order], gate, session=session, user=user)
    llm = model().bind_tools(tools)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [llm.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    graph.add_edge("agent", END)
    return graph.compile()


def answer(question: str, *, session: str, user: str) -> str:
    gate, tracer = Gate.from_env(AGENT), Tracer.from_env(AGENT)
    handler = FirebreakCallbackHandler(gate, tracer, session=session, user=user)
    try:
        result = build(gate, session=session, user=user).invoke(
            {"messages": [("user", question)]}, config={"callbacks": [handler]}
        )
        return str(result["messages"][-1].content)
    except FirebreakStop as stop:  # killed, paused, tool refused, budget, unreadable gate: the run was aborted
        print(f"stopped: {stop}", file=sys.stderr)
        return gate.fallback_response()
    finally:
        tracer.close()
        gate.close()


if __name__ == "__main__":
    print(answer("Where is my order 42?", session="conv-1", user="user-1"))
