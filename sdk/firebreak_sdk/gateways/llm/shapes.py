"""What the LLM gateway reads and writes in OpenAI's shapes: prices, refusals as OpenAI errors, the usage, output
text and finish reason of a chat completion, a response or an embedding, and of a relayed stream's events."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...errors import BudgetExceeded, BudgetFrozen, FirebreakStop, GateUnavailable

__all__ = ["ERROR_TYPE", "INPUT_FIELD", "OUTCOMES", "Outcome", "Price", "StreamReader", "error_body", "named_tool",
           "parse_price", "refusal_status", "responses_outcome", "upstream_error"]  # fmt: skip

ERROR_TYPE = "firebreak_gate_closed"


@dataclass(frozen=True)
class Price:
    """USD per 1,000 input tokens and per 1,000 output tokens of one model."""

    input_per_1k: float
    output_per_1k: float

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return tokens_in / 1000 * self.input_per_1k + tokens_out / 1000 * self.output_per_1k


def parse_price(text: str) -> tuple[str, Price]:
    """``"gpt-4o=0.0025,0.01"`` → ``("gpt-4o", Price(0.0025, 0.01))``; ``ValueError`` says what is wrong."""
    model, sep, prices = text.partition("=")
    parts = prices.split(",")
    if not sep or not model.strip() or len(parts) != 2:
        raise ValueError(f"price {text!r}: expected model=in_per_1k,out_per_1k")
    try:
        price = Price(float(parts[0]), float(parts[1]))
    except ValueError:
        raise ValueError(f"price {text!r}: prices must be numbers") from None
    if price.input_per_1k < 0 or price.output_per_1k < 0:
        raise ValueError(f"price {text!r}: prices must not be negative")
    return model.strip(), price


def refusal_status(stop: FirebreakStop) -> int:
    """The HTTP status a refusal is answered with: 503 gate unreadable, 429 budget, 403 every other stop."""
    if isinstance(stop, GateUnavailable):
        return 503
    if isinstance(stop, BudgetExceeded | BudgetFrozen):
        return 429
    return 403


def error_body(stop: FirebreakStop) -> dict[str, Any]:
    """OpenAI's error shape for a refusal: the openai client raises with ``message`` as its text."""
    return {"error": {"message": str(stop), "type": ERROR_TYPE, "code": type(stop).__name__, "param": None}}


def upstream_error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "firebreak_upstream_error", "code": code, "param": None}}


def named_tool(tool_choice: Any) -> str | None:
    """The tool a ``tool_choice`` forces (chat: ``{"type": "function", "function": {"name"}}``; responses:
    ``{"type": "function", "name"}``), or None for ``auto`` / ``none`` / ``required`` / anything else."""
    if not isinstance(tool_choice, dict):
        return None
    function = tool_choice.get("function")
    name = function.get("name") if isinstance(function, dict) else tool_choice.get("name")
    return name if isinstance(name, str) and name else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


# --- what a call said: usage, output text, finish reason, per API --------------------------------------------


@dataclass
class Outcome:
    model: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    output: Any = None
    finish_reason: str | None = None


def _chat_outcome(data: dict[str, Any], out: Outcome) -> None:
    usage = data.get("usage") or {}
    out.tokens_in, out.tokens_out = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
    choices = data.get("choices") or [{}]
    first = choices[0] if isinstance(choices[0], dict) else {}
    message = first.get("message") or {}
    out.output = message.get("content")
    if out.output is None and message.get("tool_calls"):
        out.output = message["tool_calls"]
    out.finish_reason = first.get("finish_reason")


def _responses_finish(data: dict[str, Any]) -> str | None:
    status = data.get("status")
    if status == "incomplete":
        reason = (data.get("incomplete_details") or {}).get("reason")
        return "length" if reason == "max_output_tokens" else str(reason or "incomplete")
    items = data.get("output") or []
    if any(isinstance(item, dict) and item.get("type") == "function_call" for item in items):
        return "tool_calls"
    return "stop" if status == "completed" else status


def _responses_text(data: dict[str, Any]) -> str:
    texts = []
    for item in data.get("output") or []:
        for part in (item.get("content") or []) if isinstance(item, dict) else []:
            if isinstance(part, dict) and part.get("type") == "output_text":
                texts.append(str(part.get("text", "")))
    return "".join(texts)


def responses_outcome(data: dict[str, Any], out: Outcome) -> None:
    usage = data.get("usage") or {}
    out.tokens_in, out.tokens_out = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    out.output = _responses_text(data)
    out.finish_reason = _responses_finish(data)


def _embeddings_outcome(data: dict[str, Any], out: Outcome) -> None:
    usage = data.get("usage") or {}
    out.tokens_in = _int(usage.get("prompt_tokens"))
    out.output = f"{len(data.get('data') or [])} embeddings"


OUTCOMES: dict[str, Callable[[dict[str, Any], Outcome], None]] = {
    "chat": _chat_outcome,
    "responses": responses_outcome,
    "embeddings": _embeddings_outcome,
}
INPUT_FIELD = {"chat": "messages", "responses": "input", "embeddings": "input"}


class StreamReader:
    """Folds a relayed stream's events into an outcome. ``feed`` returns False for the usage-only chunk the
    gateway asked for itself (``stream_options.include_usage``), which the client did not ask to see."""

    def __init__(self, kind: str, hide_usage: bool) -> None:
        self.kind = kind
        self.hide_usage = hide_usage
        self.out = Outcome()
        self.text: list[str] = []
        self.chunks = 0

    def feed(self, data: str) -> bool:
        if not data or data == "[DONE]":
            return True
        try:
            event = json.loads(data)
        except ValueError:
            return True
        if not isinstance(event, dict):
            return True
        self.chunks += 1
        if self.kind == "chat":
            self.out.model = event.get("model") or self.out.model
            choices = event.get("choices") or []
            for choice in choices:
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str):
                    self.text.append(delta["content"])
                if choice.get("finish_reason"):
                    self.out.finish_reason = choice["finish_reason"]
            if event.get("usage"):
                usage = event["usage"]
                self.out.tokens_in, self.out.tokens_out = (
                    _int(usage.get("prompt_tokens")),
                    _int(usage.get("completion_tokens")),
                )
                if not choices and self.hide_usage:
                    return False
        else:  # responses: typed events; the final one carries the whole response with its usage
            kind = event.get("type")
            if kind == "response.output_text.delta" and isinstance(event.get("delta"), str):
                self.text.append(event["delta"])
            elif kind in ("response.completed", "response.incomplete", "response.failed"):
                response = event.get("response") or {}
                responses_outcome(response, self.out)
                self.out.model = response.get("model") or self.out.model
        return True

    def outcome(self) -> Outcome:
        if self.text:
            self.out.output = "".join(self.text)
        return self.out
