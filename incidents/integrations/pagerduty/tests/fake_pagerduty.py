"""A stand-in for PagerDuty's Events API v2 on 127.0.0.1: a real ``http.server`` thread that checks every
body against the documented schema (developer.pagerduty.com, "Send an Alert Event") and answers as told.

Invalid bodies get PagerDuty's 400 (``{"status": "invalid event", "errors": [...]}``); valid ones the next
answer of ``answers`` (202 once it runs out). Used by the tests and by bench/detection_page.py.
"""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOP_LEVEL = {"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client", "client_url"}
PAYLOAD = {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}
ACTIONS = {"trigger", "acknowledge", "resolve"}
SEVERITIES = {"critical", "error", "warning", "info"}


def schema_errors(body: Any) -> list[str]:
    """What PagerDuty would refuse in ``body`` (empty: a valid alert event)."""
    if not isinstance(body, dict):
        return ["the event must be a JSON object"]
    errors = [f"unknown field {k}" for k in sorted(set(body) - TOP_LEVEL)]
    if not isinstance(body.get("routing_key"), str) or not body["routing_key"]:
        errors.append("routing_key is required")
    action = body.get("event_action")
    if action not in ACTIONS:
        errors.append("event_action must be trigger, acknowledge or resolve")
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("dedup_key must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append("dedup_key is required to acknowledge or resolve")
    for key in ("client", "client_url"):
        if key in body and not isinstance(body[key], str):
            errors.append(f"{key} must be a string")
    for link in body.get("links", []) if isinstance(body.get("links", []), list) else [None]:
        if not isinstance(link, dict) or not isinstance(link.get("href"), str) or set(link) - {"href", "text"}:
            errors.append("links: each needs href (and optional text)")
    if action != "trigger":
        return errors
    payload = body.get("payload")
    if not isinstance(payload, dict):
        return [*errors, "payload is required for a trigger"]
    errors += [f"unknown payload field {k}" for k in sorted(set(payload) - PAYLOAD)]
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary or len(summary) > 1024:
        errors.append("payload.summary is required, at most 1024 characters")
    if not isinstance(payload.get("source"), str) or not payload["source"]:
        errors.append("payload.source is required")
    if payload.get("severity") not in SEVERITIES:
        errors.append("payload.severity must be critical, error, warning or info")
    if "timestamp" in payload:
        try:
            datetime.fromisoformat(payload["timestamp"])
        except (TypeError, ValueError):
            errors.append("payload.timestamp must be an ISO 8601 timestamp")
    for key in ("component", "group", "class"):
        if key in payload and not isinstance(payload[key], str):
            errors.append(f"payload.{key} must be a string")
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        errors.append("payload.custom_details must be an object")
    return errors


@dataclass
class FakePagerDuty:
    url: str = ""
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (status, headers) to give next
    accepted: list[dict[str, Any]] = field(default_factory=list)  # valid bodies, in order of arrival
    arrivals: list[float] = field(default_factory=list)  # time.time() of each valid body
    requests: int = 0
    invalid: list[list[str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def actions(self) -> list[tuple[str, str]]:
        return [(b["event_action"], b.get("dedup_key", "")) for b in self.accepted]


@contextmanager
def fake_pagerduty() -> Iterator[FakePagerDuty]:
    fake = FakePagerDuty()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            errors = schema_errors(body)
            headers: dict[str, str] = {}
            if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                errors.append("Content-Type must be application/json")
            with fake.lock:
                fake.requests += 1
                if errors:
                    fake.invalid.append(errors)
                    code = 400
                else:
                    code, headers = fake.answers.pop(0) if fake.answers else (202, {})
                    fake.accepted.append(body)
                    fake.arrivals.append(time.time())
            if errors or code == 400:
                answer = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
            elif code == 202:
                answer = {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")}
            else:
                answer = {"status": "error", "message": "try again later"}
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_port}/v2/enqueue"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
