"""An agent made stoppable without changing its code: its OpenAI client talks to ``firebreak-llm-gateway``.

Start the gateway in front of your model API (the agent's key and the server's public key from
``manage.py createapikey --agent support-bot --scopes ingest,gate``)::

    export FIREBREAK_URL=http://127.0.0.1:8000 FIREBREAK_API_KEY=fbk_... FIREBREAK_GATE_PUBLIC_KEY=...
    firebreak-llm-gateway --agent support-bot --upstream https://api.openai.com/v1 --listen 127.0.0.1:8787 \\
        --price gpt-4o-mini=0.00015,0.0006

then run this agent (``OPENAI_API_KEY`` is passed through to the upstream unless the gateway has
``FIREBREAK_UPSTREAM_API_KEY``)::

    python examples/llm_gateway_agent.py --model gpt-4o-mini --session conv-1

It answers a few questions, the last one streamed. Kill ``support-bot`` in Firebreak while it runs (the agent
page's Kill button, or ``firebreak kill support-bot --reason ...``): the next call — or the stream in flight —
fails with the kill's reason, and the agent stops.
"""

from __future__ import annotations

import argparse
import os
import sys

import openai
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

QUESTIONS = [
    "In one sentence: what is a refund?",
    "In one sentence: how long does a card refund take?",
    "Write five short sentences about keeping a customer informed while a refund is processed.",
]


def firebreak_stop(exc: openai.APIError) -> str | None:
    """The gateway's refusal (killed, paused, blocked, budget, tool not allowed), or None for any other error."""
    body = exc.body if isinstance(exc.body, dict) else {}
    if body.get("type") == "firebreak_gate_closed":
        return f"{body.get('code')}: {body.get('message')}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default=os.environ.get("FIREBREAK_LLM_GATEWAY_URL", "http://127.0.0.1:8787/v1"))
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--session", default="example-session", help="sent as X-Firebreak-Session")
    parser.add_argument("--user", default="example-user", help="sent as X-Firebreak-User")
    args = parser.parse_args()
    client = OpenAI(
        base_url=args.gateway,
        api_key=os.environ.get("OPENAI_API_KEY", "unused-when-the-gateway-holds-the-key"),
        default_headers={"X-Firebreak-Session": args.session, "X-Firebreak-User": args.user},
    )
    messages: list[ChatCompletionMessageParam] = []
    try:
        for question in QUESTIONS[:-1]:
            messages.append({"role": "user", "content": question})
            reply = client.chat.completions.create(model=args.model, messages=messages)
            answer = reply.choices[0].message.content or ""
            messages.append({"role": "assistant", "content": answer})
            print(f"> {question}\n{answer}\n", flush=True)
        messages.append({"role": "user", "content": QUESTIONS[-1]})
        print(f"> {QUESTIONS[-1]}", flush=True)
        stream = client.chat.completions.create(model=args.model, messages=messages, stream=True)
        for chunk in stream:
            if chunk.choices:
                print(chunk.choices[0].delta.content or "", end="", flush=True)
        print()
    except openai.APIError as exc:
        stop = firebreak_stop(exc)
        if stop is None:
            raise
        print(f"\nstopped by Firebreak: {stop}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
