"""A small scripted model behind an OpenAI-compatible API, run as its own process for the LLM gateway's tests.

``python tests/sdk/fake_openai_upstream.py <port>``. Deterministic: a chat answer is ``"echo: <last user
message>"``, usage counts words (prompt: every message's words; completion: the answer's). Model
``scripted-slow`` streams 200 words ``w1 … w200``, one chunk every 50 ms (time to kill mid-answer).
Model ``missing`` answers 404.
``GET /_stats`` says what it saw: calls per route, the last ``Authorization``, streams finished and cut.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

SLOW_WORDS = 200  # 10 s in all: a kill under load still lands mid-answer; a test that cuts it waits no longer
SLOW_INTERVAL = 0.05

stats: dict[str, Any] = {
    "calls": {"chat": 0, "responses": 0, "embeddings": 0, "models": 0},
    "authorization": None,
    "streams_finished": 0,
    "streams_cut": 0,
    "chunks_sent": [],
}


def _words(value: Any) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(v) for v in value)
    if isinstance(value, dict):
        return _words(value.get("content")) + _words(value.get("text"))
    return 0


def _last_user_text(messages: Any) -> str:
    if isinstance(messages, str):
        return messages
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def _answer(model: str, prompt: str) -> list[str]:
    """The answer's chunks: words (each after the first with its leading space)."""
    words = [f"w{i}" for i in range(1, SLOW_WORDS + 1)] if model == "scripted-slow" else ["echo:", *prompt.split()]
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


async def _seen(request: Request, route: str) -> dict[str, Any]:
    stats["calls"][route] += 1
    stats["authorization"] = request.headers.get("authorization")
    return await request.json() if request.method == "POST" else {}


async def chat(request: Request) -> Response:
    body = await _seen(request, "chat")
    model = body.get("model", "scripted")
    if model == "missing":  # an upstream error, passed through by the gateway
        error = {"message": "The model `missing` does not exist", "type": "invalid_request_error"}
        return JSONResponse({"error": {**error, "code": "model_not_found", "param": None}}, 404)
    chunks = _answer(model, _last_user_text(body.get("messages")))
    usage = {"prompt_tokens": _words(body.get("messages")), "completion_tokens": len(chunks)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    created = int(time.time())
    if not body.get("stream"):
        message = {"role": "assistant", "content": "".join(chunks)}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [choice],
                "usage": usage,
            }
        )
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> bytes:
        event = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(event)}\n\n".encode()

    async def events() -> AsyncIterator[bytes]:
        sent = 0
        try:
            yield chunk({"role": "assistant", "content": ""}, None)
            for text in chunks:
                if model == "scripted-slow":
                    await asyncio.sleep(SLOW_INTERVAL)
                yield chunk({"content": text}, None)
                sent += 1
            yield chunk({}, "stop")
            if include_usage:
                event = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
                yield f"data: {json.dumps(event)}\n\n".encode()
            yield b"data: [DONE]\n\n"
            stats["streams_finished"] += 1
        finally:
            stats["chunks_sent"].append(sent)
            if sent < len(chunks):
                stats["streams_cut"] += 1

    return StreamingResponse(events(), media_type="text/event-stream")


async def responses(request: Request) -> Response:
    body = await _seen(request, "responses")
    model = body.get("model", "scripted")
    text = "".join(_answer(model, _last_user_text(body.get("input"))))
    usage = {"input_tokens": _words(body.get("input")), "output_tokens": len(text.split())}
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    content = [{"type": "output_text", "text": text, "annotations": []}]
    message = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": content}
    response = {
        "id": "resp_1",
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "status": "completed",
        "output": [message],
        "usage": usage,
    }
    if not body.get("stream"):
        return JSONResponse(response)

    async def events() -> AsyncIterator[bytes]:
        started = {**response, "status": "in_progress", "output": [], "usage": None}
        typed: list[tuple[str, dict[str, Any]]] = [("response.created", {"response": started})]
        for i, word in enumerate(_answer(model, _last_user_text(body.get("input")))):
            delta = {"item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": word, "logprobs": []}
            typed.append(("response.output_text.delta", delta))
        typed.append(("response.completed", {"response": response}))
        for n, (kind, fields) in enumerate(typed):
            yield f"event: {kind}\ndata: {json.dumps({'type': kind, 'sequence_number': n, **fields})}\n\n".encode()
        stats["streams_finished"] += 1

    return StreamingResponse(events(), media_type="text/event-stream")


async def embeddings(request: Request) -> Response:
    body = await _seen(request, "embeddings")
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = []
    for i, text in enumerate(inputs):
        vector = [float(len(str(text))), float(i), 0.5]
        if body.get("encoding_format") == "base64":  # what the openai client asks for by default
            packed = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": packed})
        else:
            data.append({"object": "embedding", "index": i, "embedding": vector})
    tokens = _words(inputs)
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


async def models(request: Request) -> Response:
    await _seen(request, "models")
    model = {"id": "scripted", "object": "model", "created": 0, "owned_by": "firebreak-tests"}
    return JSONResponse({"object": "list", "data": [model]})


async def read_stats(request: Request) -> Response:
    return JSONResponse(stats)


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/responses", responses, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/_stats", read_stats, methods=["GET"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
