"""A LangChain run traced by a framework's own instrumentor, exported over OTLP to Firebreak.

Usage (the instrumentors' venv): ``python langchain_run.py --instrumentor openinference|openllmetry``, with
``FIREBREAK_URL``, ``FIREBREAK_API_KEY`` and ``FIREBREAK_AGENT`` in the environment. The run: a chain
(prompt → a scripted chat model that answers with usage and its model name) and a tool call, no network.
Prints the trace id and exits 0 once the spans are exported.
"""

import argparse
import os
import sys
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

ANSWER = "Order 9 shipped on Monday."
MODEL = "scripted-gpt-4o-mini"


class ScriptedChat(BaseChatModel):
    """A chat model that answers from a script: one message with usage and the model's name."""

    @property
    def _llm_type(self) -> str:
        return "scripted-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": MODEL}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = AIMessage(
            content=ANSWER,
            usage_metadata={"input_tokens": 42, "output_tokens": 7, "total_tokens": 49},
            response_metadata={"model_name": MODEL, "finish_reason": "stop"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output={"model_name": MODEL})


@tool
def lookup_order(order_id: str) -> str:
    """Look an order up."""
    return f"order {order_id}: shipped"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instrumentor", choices=("openinference", "openllmetry"), required=True)
    args = parser.parse_args()
    agent = os.environ["FIREBREAK_AGENT"]
    exporter = OTLPSpanExporter(
        endpoint=os.environ["FIREBREAK_URL"].rstrip("/") + "/v1/traces",
        headers={"Authorization": f"Bearer {os.environ['FIREBREAK_API_KEY']}"},
    )
    provider = TracerProvider(resource=Resource.create({"service.name": agent}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    if args.instrumentor == "openinference":
        from openinference.instrumentation.langchain import LangChainInstrumentor
    else:
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor as LangChainInstrumentor
    LangChainInstrumentor().instrument(tracer_provider=provider)

    chain = ChatPromptTemplate.from_messages([("user", "Where is order {order}?")]) | ScriptedChat()
    answer = chain.invoke({"order": "9"})
    lookup_order.invoke({"order_id": "9"})
    provider.force_flush()
    provider.shutdown()
    print(f"answered {answer.content!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
