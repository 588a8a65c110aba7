"""A local ingest endpoint that misbehaves on purpose, and a typical run, for the tracer's tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

from firebreak_sdk import Tracer

TRACER_AGENT = "refund-bot"


class IngestServer(ThreadingHTTPServer):
    """POST /api/v1/ingest that answers from ``script`` ((status, headers, body) per request, then 200s),
    optionally sleeping first, and records every request."""

    daemon_threads = True

    def __init__(self, script=(), sleep: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), IngestHandler)
        self.script = list(script)
        self.sleep = sleep
        self.requests: list[SimpleNamespace] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def spans(self) -> list[dict]:
        return [span for r in self.requests if r.status == 200 for span in r.json["spans"]]


class IngestHandler(BaseHTTPRequestHandler):
    server: IngestServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        with server.lock:
            status, headers, reply = server.script.pop(0) if server.script else (200, {}, None)
            server.requests.append(
                SimpleNamespace(
                    at=time.monotonic(),
                    path=self.path,
                    headers=dict(self.headers.items()),
                    body=body,
                    json=json.loads(body),
                    status=status,
                )
            )
        if server.sleep:
            time.sleep(server.sleep)
        if reply is None:
            n = len(json.loads(body)["spans"])
            reply = {"received": n, "stored": n, "duplicates": 0, "traces": 1} if status == 200 else {"error": "no"}
        payload = json.dumps(reply).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def three_step_run(tracer: Tracer):
    """A run with one model call and two tool calls (one timed with ``step``, one recorded afterwards)."""
    with tracer.run(
        session_id="conv-7",
        user_id="user-42",
        input_class="refund",
        input="Please refund order 42",
        prompt_version="refund@v3",
        model_version="gpt-x-2026-01",
    ) as run:
        time.sleep(0.05)  # the model call
        run.llm(
            name="plan",
            model="gpt-x-2026-01",
            input="Please refund order 42",
            output="call lookup_order",
            tokens_in=120,
            tokens_out=12,
            cost=0.0031,
            finish_reason="tool_calls",
            duration=0.05,
        )
        with run.step("tool", tool="lookup_order", arguments={"order_id": 42}) as step:
            time.sleep(0.01)
            step.output = {"status": "delivered", "total": 30}
        run.tool("send_email", {"to": "user-42", "api_key": "sk-secret"}, output="sent")
        run.output = "Refunded $30."
    return run
