"""``firebreak-llm-gateway``'s command line: the options, the checks made before anything starts, the server."""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn

from ...gate import Gate
from ...tracer import Tracer
from .proxy import LLMGateway
from .shapes import Price, parse_price

__all__ = ["build_parser", "main"]

log = logging.getLogger("firebreak_sdk.gateways.llm")


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8787")
    return host or "127.0.0.1", int(port)


def _price(text: str) -> tuple[str, Price]:
    try:
        return parse_price(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="firebreak-llm-gateway",
        description="An OpenAI-compatible proxy that checks the agent's Firebreak gate and budget before every "
        "model call, cuts streams when the agent is killed and records an LLM span per call. Credentials: "
        "FIREBREAK_URL, FIREBREAK_API_KEY, FIREBREAK_GATE_PUBLIC_KEY; upstream key: FIREBREAK_UPSTREAM_API_KEY "
        "(else the client's Authorization is passed through).",
    )
    parser.add_argument("--agent", required=True, help="the agent's slug in Firebreak")
    parser.add_argument(
        "--upstream", required=True, help="the model API's OpenAI base URL, e.g. https://api.openai.com/v1"
    )
    parser.add_argument(
        "--listen", type=_listen, default=("127.0.0.1", 8787), help="HOST:PORT (default 127.0.0.1:8787)"
    )
    parser.add_argument(
        "--price",
        type=_price,
        action="append",
        default=[],
        metavar="MODEL=IN_PER_1K,OUT_PER_1K",
        help="USD per 1,000 input and output tokens of a model, for the budget's cost (repeat; default 0)",
    )
    parser.add_argument("--session-idle", type=float, default=600.0, help="seconds before an idle session's run ends")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds an upstream call may take")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.upstream.startswith(("http://", "https://")):
        parser.error(
            f"--upstream {args.upstream!r}: expected an http:// or https:// URL, e.g. https://api.openai.com/v1"
        )
    if args.session_idle <= 0 or args.timeout <= 0:
        parser.error("--session-idle and --timeout must be more than 0 seconds")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per span batch otherwise
    gate = Gate.from_env(args.agent)
    tracer = Tracer.from_env(args.agent)
    gateway = LLMGateway(
        gate=gate,
        tracer=tracer,
        upstream=args.upstream,
        prices=dict(args.price),
        upstream_api_key=os.environ.get("FIREBREAK_UPSTREAM_API_KEY") or None,
        session_idle=args.session_idle,
        timeout=args.timeout,
    )
    host, port = args.listen
    config = uvicorn.Config(
        gateway.app,
        host=host,
        port=port,
        interface="asgi3",  # a bound method: uvicorn would take it for ASGI 2
        proxy_headers=False,  # agents call it directly; nothing reads the client's address
        log_level="warning",
        access_log=False,
    )
    log.info("firebreak-llm-gateway for %s: http://%s:%d/v1 → %s", args.agent, host, port, gateway.upstream)
    uvicorn.Server(config).run()
    return 0
