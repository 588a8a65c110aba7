"""The fault benchmark: what ``make run`` loses and how fast it comes back when its own parts fail.

Usage: .venv/bin/python bench/faults.py [--spans N] [--outage S] [--loops N] [--only otlp|worker|restart|login]

Everything runs as ``make run`` runs it: ``python -m firebreak.supervise`` (supervisord owning the gate server,
gunicorn, the Celery worker and beat, and an embedded PostgreSQL and Redis of the benchmark's own, under a
temporary var directory), on a free port.

(1) otlp — a real OpenTelemetry exporter (opentelemetry-exporter-otlp-proto-http, default settings: 10 s
timeout, retries on 429/502/503/504) sends N spans (default 3,000) at a steady rate to ``POST /v1/traces``
with an agent key; PostgreSQL is stopped (``supervisorctl stop postgres``) for S seconds (default 10) in the
middle, then started again. Figure: spans sent versus stored once the spool has drained. Target: 0 lost.

(2) worker — N agents (default 30) each get a runaway trajectory (50 identical tool calls: rule pause)
committed through ``traces.services.trace_ingest``, whose streaming detection goes to the worker; once
the first alert is raised the worker is killed (SIGKILL) and supervisord starts it again. Figure:
alerts raised versus expected after re-delivery (visibility timeout 60 s). Target: 0 lost.

(3) restart — each program is killed (SIGKILL) in turn; the time until supervisord runs it again and
``/healthz`` answers 200. Target: ≤ 10 s each.

(4) login — wrong passwords for one user from one address until the login answers 429 (locked).
Figure: the wrong passwords answered as such before the one that locks.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from django.db import connections
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from harness import ROOT, django_setup, free_port, machine, say, summary

AGENT = "bench-faults"
SUPERVISORCTL = Path(sys.executable).with_name("supervisorctl")
RESTART_TARGET = 10.0


class Supervised:
    """``make run``'s supervisord on its own var directory and port."""

    def __init__(self, var: Path, port: int) -> None:
        self.var, self.port = var, port
        self.base = f"http://127.0.0.1:{port}"
        self.conf = var / "run" / "supervisord.conf"
        self.log = open(var / "supervise.out", "w")  # noqa: SIM115 (closed in stop())
        env = os.environ | {"PORT": str(port)}
        command = [sys.executable, "-m", "firebreak.supervise"]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        if self.wait_healthy(180) is None:
            raise RuntimeError(f"make run's processes never became healthy (see {var / 'supervise.out'})")
        connections.close_all()  # the servers django_setup() started were replaced by the supervised ones

    def ctl(self, *args: str) -> str:
        return subprocess.run([SUPERVISORCTL, "-c", self.conf, *args], capture_output=True, text=True).stdout

    def pid(self, name: str) -> int:
        out = self.ctl("pid", name).strip()
        return int(out) if out.isdigit() else 0

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_healthy(self, timeout: float) -> float | None:
        started = time.monotonic()
        while not self.healthy():
            if time.monotonic() - started > timeout:
                return None
            time.sleep(0.05)
        return time.monotonic() - started

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def stored_steps(agent: str) -> int:
    from traces.models import Step  # after django_setup()

    while True:
        try:
            return Step.objects.filter(trace__agent__slug=agent).count()
        except Exception:  # PostgreSQL restarting under us: reconnect and ask again
            connections.close_all()
            time.sleep(0.5)


def bench_otlp(run: Supervised, key: str, spans: int, outage: float) -> tuple[int, int]:
    exporter = OTLPSpanExporter(endpoint=f"{run.base}/v1/traces", headers={"Authorization": f"Bearer {key}"})
    provider = TracerProvider(resource=Resource.create({"service.name": AGENT}))
    # A queue that holds the whole run: the figure is what the server lost, not what the client's queue dropped.
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=spans * 2))
    tracer = provider.get_tracer("bench.faults")
    sending_seconds = max(3 * outage, 20.0)

    def outage_in_the_middle() -> None:
        time.sleep(sending_seconds / 3)
        say(f"  PostgreSQL stopped: {run.ctl('stop', 'postgres').strip()}")
        time.sleep(outage)
        say(f"  PostgreSQL started: {run.ctl('start', 'postgres').strip()}")

    fault = threading.Thread(target=outage_in_the_middle)
    fault.start()
    started = time.monotonic()
    for i in range(spans):
        with tracer.start_as_current_span("agent step") as span:
            span.set_attribute("gen_ai.operation.name", "execute_tool")
            span.set_attribute("gen_ai.tool.name", "lookup_order")
            span.set_attribute("gen_ai.tool.call.arguments", f'{{"order_id": "ORD-{i}"}}')
        time.sleep(max(0.0, started + (i + 1) * sending_seconds / spans - time.monotonic()))
    fault.join()
    provider.force_flush(timeout_millis=120_000)
    provider.shutdown()
    deadline, stored = time.monotonic() + 120, 0
    while time.monotonic() < deadline and (stored := stored_steps(AGENT)) < spans:
        time.sleep(0.5)  # the spool drains into PostgreSQL
    return spans, stored


def bench_worker(run: Supervised, loops: int) -> tuple[int, int, float]:
    from agents.models import Agent
    from incidents.models import Alert
    from traces.services import trace_ingest
    from traces.synthetic import trajectory_spans

    slugs = [f"bench-fault-loop-{i}" for i in range(loops)]
    for slug in slugs:
        Agent.objects.get_or_create(slug=slug, defaults={"name": slug, "allowed_tools": ["lookup_order"]})
    steps = [{"kind": "tool", "tool": "lookup_order", "args": {"order_id": "ORD-4242"}} for _ in range(50)]
    for slug in slugs:
        trace_ingest(spans=trajectory_spans(agent=slug, steps=steps))  # commits; the detection is queued
    alerts = Alert.objects.filter(agent__slug__in=slugs)
    while not alerts.exists():
        time.sleep(0.01)
    killed_at_alerts = alerts.count()
    os.kill(run.pid("worker"), signal.SIGKILL)
    say(f"  worker killed (SIGKILL) after {killed_at_alerts} of {loops} detections")
    started = time.monotonic()
    while alerts.count() < loops and time.monotonic() - started < 240:
        time.sleep(0.5)
    return loops, alerts.count(), time.monotonic() - started


def serving(name: str) -> bool:
    """The killed program's replacement does its job: a new PostgreSQL connection, a Redis PING, a worker that
    answers a Celery ping (the others: /healthz, checked by the caller)."""
    from django.db import connection

    from core.redis import get_redis
    from firebreak.celery import app

    try:
        if name == "postgres":
            connections.close_all()  # a kept connection may be an orphaned backend of the killed server
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        elif name == "redis":
            get_redis().connection_pool.disconnect()
            get_redis().ping()
        elif name == "worker":
            return bool(app.control.ping(timeout=0.5))
        return True
    except Exception:
        return False


def bench_restart(run: Supervised) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    for name in ("postgres", "redis", "worker", "beat", "web", "gate"):
        pid = run.pid(name)
        started = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        deadline = started + 60
        while time.monotonic() < deadline and (
            run.pid(name) in (0, pid) or "RUNNING" not in run.ctl("status", name) or not serving(name)
        ):
            time.sleep(0.05)
        waited = run.wait_healthy(max(0.0, deadline - time.monotonic()))
        found[name] = None if waited is None else time.monotonic() - started
        time.sleep(3)  # let it settle before the next one
    connections.close_all()
    return found


def bench_login(run: Supervised) -> int:
    from django.contrib.auth import get_user_model

    connections.close_all()
    user, _ = get_user_model().objects.get_or_create(username="bench-lockout")
    user.set_password("a-long-correct-password-1")
    user.save()
    attempts = 0
    with httpx.Client(base_url=run.base, timeout=10) as client:
        for _ in range(100):
            page = client.get("/accounts/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            if token is None:
                raise RuntimeError(f"no CSRF token on the login page ({page.status_code})")
            response = client.post(
                "/accounts/login/",
                data={"username": "bench-lockout", "password": "wrong", "csrfmiddlewaretoken": token.group(1)},
                headers={"Referer": f"{run.base}/accounts/login/"},
            )
            if response.status_code == 429:
                return attempts
            attempts += 1
    return attempts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=3000)
    parser.add_argument("--outage", type=float, default=10.0)
    parser.add_argument("--loops", type=int, default=30)
    parser.add_argument("--only", choices=("otlp", "worker", "restart", "login"))
    args = parser.parse_args()
    started = time.monotonic()
    say(f"fault benchmark on {machine()}")
    var = Path(tempfile.mkdtemp(prefix="fb-faults-"))
    for name in ("DATABASE_URL", "REDIS_URL", "FIREBREAK_SUPERVISED"):
        os.environ.pop(name, None)
    os.environ["FIREBREAK_VAR_DIR"] = str(var)
    django_setup()
    from agents.keys.services import api_key_create
    from agents.models import Agent

    agent, _ = Agent.objects.get_or_create(slug=AGENT, defaults={"name": AGENT})
    _, key = api_key_create(agent=agent, scopes=["ingest", "gate"])
    run = Supervised(var, free_port())
    lines: list[str] = []
    try:
        if args.only in (None, "otlp"):
            sent, stored = bench_otlp(run, key, args.spans, args.outage)
            lines.append(
                f"  otlp: PostgreSQL stopped {args.outage:g} s under a default OTLP exporter: {sent} spans sent, "
                f"{stored} stored, {sent - stored} lost (target 0)"
            )
            say(lines[-1])
        if args.only in (None, "worker"):
            expected, raised, waited = bench_worker(run, args.loops)
            lines.append(
                f"  worker: killed mid-batch: {raised} of {expected} detections made, {expected - raised} lost "
                f"(target 0), the last {waited:.0f} s after the kill"
            )
            say(lines[-1])
        if args.only in (None, "restart"):
            for name, seconds in bench_restart(run).items():
                shown = "did not recover in 60 s" if seconds is None else f"{seconds:.1f} s"
                lines.append(f"  restart: {name} killed → healthy again in {shown} (target ≤ {RESTART_TARGET:g} s)")
                say(lines[-1])
        if args.only in (None, "login"):
            refused = bench_login(run)
            lines.append(
                f"  login: {refused} wrong passwords refused as wrong, the {refused + 1}th locks the user name "
                "from that address (429)"
            )
            say(lines[-1])
    finally:
        run.stop()
        shutil.rmtree(var, ignore_errors=True)
    summary(lines, started)


if __name__ == "__main__":
    main()
