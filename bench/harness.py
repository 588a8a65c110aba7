"""What every benchmark in bench/ shares: the project's Django, the server processes, timing, printing, content.

- Django: ``django_setup()`` (the project's settings, database and Redis: the embedded ones under var/ when
  DATABASE_URL / REDIS_URL are unset; migrated quietly) and ``bench_user()``. The project's modules import
  Django models, so the benchmarks import them inside functions that run after ``django_setup()``.
- Processes: ``gunicorn()``, ``celery_worker()`` and ``ChildProcess`` (a helper process of the benchmark
  that reports on its stdout, one line per event), each stopped when the benchmark ends.
- Timing: ``percentile()`` (nearest rank), ``quantiles()`` (interpolated, for large samples), ``time_get()``
  (server time of Django test-client GETs), ``wait_stored()``, and the CPU accounting from /proc.
- Printing: one figure per line (``say()``), ``duration()``, ``summary()``, ``machine()``.
- Content: ``Corpus`` (random-looking text), ``TOOLS`` and ``tool_call()`` (a support agent's tool calls).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import platform
import queue
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "bench-admin"

# Benchmarks measure Firebreak's speed, not its throttles: no rate limits, here and in every server they start.
for _scope in ("KEY", "USER", "INGEST"):
    os.environ.setdefault(f"FIREBREAK_THROTTLE_{_scope}_RATE", "off")


# --- printing ---------------------------------------------------------------------------------------------


def say(*lines: str) -> None:
    print(*lines, sep="\n", flush=True)


def duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def summary(lines: list[str], started: float) -> None:
    """The closing block: the machine, one line per target, the run time since ``started`` (monotonic)."""
    say(
        f"summary: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}",
        *lines,
        f"  total run time {duration(time.monotonic() - started)}",
    )


def machine() -> str:
    """The CPU model, CPU count, kernel and Python, on one line."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}"


# --- timing -----------------------------------------------------------------------------------------------


def percentile(samples: list[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by nearest rank: one of the samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def quantiles(samples: list[float]) -> dict[str, float]:
    """p50, p99, p99.9 (interpolated between samples) and the maximum."""
    q = statistics.quantiles(samples, n=1000, method="inclusive")
    return {"p50": q[499], "p99": q[989], "p99.9": q[998], "max": max(samples)}


def time_get(client, url: str, n: int, warmup: int = 3) -> tuple[list[float], int, bytes]:
    """Milliseconds of ``n`` GETs with a Django test client after ``warmup``; the status and body of the last."""
    for _ in range(warmup):
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered HTTP {response.status_code}")
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
    return samples, response.status_code, response.content


def wait_stored(count: Callable[[], int], target: int, stall_seconds: float, interval: float) -> tuple[int, float]:
    """Poll ``count()`` until it reaches ``target`` or stops growing for ``stall_seconds``; (count, when)."""
    last, last_change = -1, time.monotonic()
    while True:
        n = count()
        now = time.monotonic()
        if n >= target:
            return n, now
        if n != last:
            last, last_change = n, now
        elif now - last_change > stall_seconds:
            return n, now
        time.sleep(interval)


# --- CPU accounting from /proc ----------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stats() -> dict[int, tuple[str, int, float]]:
    """pid -> (command name, parent pid, CPU seconds so far) for every process; a process's CPU includes its
    children that ended and were reaped (a PostgreSQL backend that served one connection and left counts in
    the postmaster's, which ``postgres_pids`` names)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        cpu = sum(int(f) for f in fields[11:15])  # utime, stime, and the reaped children's cutime, cstime
        out[int(entry)] = (comm, int(fields[1]), cpu / CLOCK_TICKS)
    return out


def descendants(stats: dict[int, tuple[str, int, float]], root: int) -> set[int]:
    """``root`` and every process below it."""
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (_, ppid, _) in stats.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return found


@dataclass
class CpuSnapshot:
    procs: dict[int, tuple[str, int, float]]
    busy: float  # machine CPU seconds so far, all cores, minus idle and iowait


def cpu_snapshot() -> CpuSnapshot:
    ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return CpuSnapshot(_proc_stats(), (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLOCK_TICKS)


def postgres_pids() -> set[int]:
    """The PostgreSQL processes working for this project's database: its client backends, the server's own,
    and the postmaster (whose CPU holds the backends that ended: connections opened and closed meanwhile)."""
    from django.db import connection  # after django_setup(): the project's database

    with connection.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND (datname = current_database() OR backend_type <> 'client backend')"
        )
        pids = {row[0] for row in cur.fetchall()}
    stats = _proc_stats()
    parents = {stats[p][1] for p in pids if p in stats}
    return pids | {p for p in parents if stats.get(p, ("",))[0] == "postgres"}


def _group_cpu(before: CpuSnapshot, after: CpuSnapshot, pids: set[int]) -> float:
    """CPU seconds of ``pids`` between the snapshots. A child of theirs that ended meanwhile came back in its
    parent's reaped time whole, from its start: what it had used by ``before`` is taken off again."""
    live = sum(after.procs[p][2] - before.procs.get(p, ("", 0, 0.0))[2] for p in pids if p in after.procs)
    ended = sum(cpu for p, (_, ppid, cpu) in before.procs.items() if p not in after.procs and ppid in pids)
    return live - ended


def cpu_line(before: CpuSnapshot, after: CpuSnapshot, seconds: float, groups: dict[str, set[int]], spans: int) -> str:
    """CPU seconds of each group of processes between two snapshots, the rest of the machine as "other"."""
    cores = os.cpu_count() or 1
    busy = after.busy - before.busy
    used = {name: _group_cpu(before, after, pids) for name, pids in groups.items()}
    parts = [f"{name} {v:.1f}" for name, v in used.items()] + [f"other {busy - sum(used.values()):.1f}"]
    per_span = ", ".join(f"{name} {v / spans * 1e6:,.0f}" for name, v in used.items() if name != "sender")
    return (
        f"cpu-s over {seconds:.1f} s × {cores} cores = {seconds * cores:.1f}: {', '.join(parts)}; "
        f"machine busy {busy:.1f} ({busy / (seconds * cores):.0%}); CPU µs per span: {per_span}"
    )


def wait_quiet(limit: float = 120, busy_below: float = 0.25) -> None:
    """Wait (at most ``limit`` s) for a 2-second window with the machine under ``busy_below`` busy; warn if none."""
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + limit
    while True:
        before = cpu_snapshot()
        time.sleep(2)
        after = cpu_snapshot()
        share = (after.busy - before.busy) / (2 * cores)
        if share < busy_below:
            return
        if time.monotonic() > deadline:
            top = sorted(
                ((after.procs[p][2] - before.procs[p][2], after.procs[p][0]) for p in after.procs if p in before.procs),
                reverse=True,
            )[:3]
            names = ", ".join(f"{name} {cpu / 2:.0%}" for cpu, name in top)
            say(f"  warning: the machine is {share:.0%} busy before the timed phase ({names}); figures are noisy")
            return


# --- Django -----------------------------------------------------------------------------------------------


def django_setup() -> None:
    """The project's Django: starts the embedded PostgreSQL and Redis (or reuses them) and migrates quietly."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "firebreak.settings")
    # Imported here: the settings module is chosen just above, and django.setup() must run before models load.
    import django
    from django.core.management import call_command

    django.setup()
    logging.getLogger("django.request").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the project's logging would print every request
    call_command("migrate", verbosity=0, interactive=False)


def bench_user():
    """The user ``bench-admin`` (group admin, no password), created once."""
    from django.contrib.auth import get_user_model  # after django_setup()
    from django.contrib.auth.models import Group

    # Not a superuser: `manage.py bootstrap` prints the first admin login only while no superuser exists.
    user, created = get_user_model().objects.get_or_create(username=ADMIN)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    return user


# --- processes --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen, timeout: float) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def _http_server(name: str, command: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen]:
    """Start ``command`` (an HTTP server on ``port``) and wait until its /healthz answers 200; stop it afterwards."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(OSError, http.client.HTTPException):
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        conn.close()
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"{name} did not answer http://127.0.0.1:{port}/healthz:\n{tail}")
                time.sleep(0.1)
            yield proc
        finally:
            _stop(proc, 15)


@contextlib.contextmanager
def gunicorn(workers: int, threads: int, *, timeout: int | None = None) -> Iterator[tuple[str, int]]:
    """gunicorn (gthread) serving the project on a free loopback port; yields its base URL and the master's pid."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "gunicorn"), "firebreak.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--worker-class", "gthread", "--workers", str(workers), "--threads", str(threads)]
    command += ["--timeout", str(timeout)] if timeout is not None else []
    with _http_server("gunicorn", command, dict(os.environ), port) as proc:
        yield f"http://127.0.0.1:{port}", proc.pid


@contextlib.contextmanager
def gate_front(upstream: str) -> Iterator[str]:
    """The gate server (uvicorn, as ``make run`` runs it) on a free loopback port, in front of ``upstream``.

    Gate reads and streams it answers itself; everything else it forwards to ``upstream`` (gunicorn).
    Yields its base URL."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "uvicorn"), "firebreak.asgi:application"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-proxy-headers", "--no-access-log", "--lifespan", "on"]
    command += ["--log-level", "warning"]
    with _http_server("the gate server", command, {**os.environ, "FIREBREAK_WEB_UPSTREAM": upstream}, port):
        yield f"http://127.0.0.1:{port}"


def warm_workers(api: Any, slug: str, n: int = 16) -> None:
    """Gate changes from ``n`` threads at once through ``api`` (an ``httpx.Client`` on the gate server): a tool of
    ``slug`` disabled and enabled again by each, so every gunicorn worker has served a gate change (its imports,
    connections, signing key) before a kill is timed. A worker's first request costs ~0.5 s here."""

    def change(i: int) -> None:
        for action in ("disable", "enable"):
            response = api.post(f"/api/v1/agents/{slug}/tools/warm-{i}/{action}", json={"reason": "bench warm-up"})
            response.raise_for_status()

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(change, range(n)))


@contextlib.contextmanager
def celery_worker() -> Iterator[subprocess.Popen]:
    """A Celery worker (solo pool) with the same environment; waits until it answers a ping."""
    from firebreak.celery import app  # after django_setup(): the project's Celery app

    celery = Path(sys.executable).parent / "celery"
    command = [str(celery), "-A", "firebreak", "worker", "--pool", "solo", "--loglevel", "WARNING"]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not (app.control.ping(timeout=0.5) or []):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError("celery worker did not start:\n" + log.read().decode(errors="replace")[-2000:])
            yield proc
        finally:
            _stop(proc, 15)


class ChildProcess:
    """A helper process of the benchmark (an agent, a sender) that reports one line per event on its stdout.

    Its lines arrive on a queue; ``expect`` takes the next one. It reads its stdin, so closing it ends the child.
    """

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def expect(self, word: str, timeout: float) -> str:
        """The next line, which must start with ``word``; raise if another line, the end or nothing comes."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{self.name} did not report {word!r} within {timeout:g} s") from None
        if line is None:
            raise RuntimeError(f"{self.name} exited (code {self.proc.wait()}) before reporting {word!r}")
        if not line.startswith(word):
            raise RuntimeError(f"{self.name} reported {line!r}, expected {word!r}")
        return line

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self, timeout: float) -> None:
        """Close its stdin and wait ``timeout`` seconds for it to end; kill it if it does not."""
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- content: what a support agent's runs look like --------------------------------------------------------

_WORD_TEXT = (
    "order refund shipping customer account invoice payment delivery tracking address warehouse carrier status "
    "the a an of to in for on with by from as is was be are has have not this that it its we you they our your "
    "please thanks sorry delayed package arrived damaged replacement subscription plan upgrade downgrade cancel "
    "policy within days business receipt charge card billing email phone support ticket escalate agent human "
    "confirm verify identity number reference item quantity price total discount coupon code expired valid "
    "return label print drop off pickup scheduled tomorrow today week estimated window update notify"
)
WORDS = _WORD_TEXT.split()
TOOLS = {
    "lookup_order": "Look up an order by its id: items, totals, payment and fulfilment status.",
    "track_shipment": "Carrier tracking events for a shipment.",
    "search_kb": "Search the help-centre knowledge base; returns the best matching articles.",
    "issue_refund": "Refund an order or some of its items to the original payment method.",
    "update_ticket": "Add a note or change the status of the customer's support ticket.",
    "send_email": "Send the customer an email from a template.",
    "escalate_to_human": "Hand the conversation to a human agent with a summary.",
}


class Corpus:
    """Random-looking text cut from one pre-built string: cheap enough for 200,000 spans."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.text = " ".join(rng.choice(WORDS) for _ in range(60_000))

    def __call__(self, low: int, high: int) -> str:
        n = self.rng.randint(low, high)
        start = self.rng.randrange(0, len(self.text) - n)
        return self.text[start : start + n].strip().capitalize() + "."


def tool_call(rng: random.Random, words: Corpus, tool: str, order: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Arguments and result of one call of ``tool`` (one of TOOLS) about order ``order``."""
    args: dict[str, Any]
    result: dict[str, Any]
    if tool == "lookup_order":
        args = {"order_id": f"A-{order}", "include": ["items", "payments", "fulfilment"]}
        result = {
            "order_id": f"A-{order}",
            "status": rng.choice(["processing", "shipped", "delivered", "cancelled"]),
            "items": [
                {
                    "sku": f"SKU-{rng.randint(1000, 9999)}",
                    "name": words(12, 40),
                    "qty": rng.randint(1, 3),
                    "price": round(rng.uniform(5, 250), 2),
                }
                for _ in range(rng.randint(1, 5))
            ],
            "payment": {"method": "card", "last4": f"{rng.randint(0, 9999):04d}", "captured": True},
            "placed_at": "2025-11-02T14:21:09Z",
        }
    elif tool == "track_shipment":
        args = {"order_id": f"A-{order}", "carrier": rng.choice(["dhl", "ups", "colissimo"])}
        result = {"events": [{"at": f"2025-11-0{i + 3}T0{i}:15:00Z", "where": words(10, 30), "what": words(15, 60)}
                             for i in range(rng.randint(2, 6))]}  # fmt: skip
    elif tool == "search_kb":
        args = {"query": words(20, 80), "top_k": 3}
        result = {"articles": [{"id": rng.randint(100, 999), "title": words(20, 50), "excerpt": words(150, 400)}
                               for _ in range(3)]}  # fmt: skip
    elif tool == "issue_refund":
        args = {"order_id": f"A-{order}", "amount": round(rng.uniform(5, 180), 2), "reason": words(20, 60)}
        result = {"refund_id": f"R-{rng.randint(10**7, 10**8)}", "status": "pending", "eta_days": 5}
    elif tool == "update_ticket":
        args = {"ticket_id": rng.randint(10**5, 10**6), "note": words(40, 200), "status": "pending"}
        result = {"ok": True}
    elif tool == "send_email":
        args = {"template": "order_update", "to": f"customer{order}@example.com", "vars": {"order": f"A-{order}"}}
        result = {"message_id": f"<{rng.getrandbits(64):016x}@mail.example.com>", "queued": True}
    else:
        args = {"summary": words(80, 300), "priority": rng.choice(["normal", "high"])}
        result = {"queue": "tier2", "position": rng.randint(1, 40)}
    return args, result
