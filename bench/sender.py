"""The sender: a process that posts pre-encoded OTLP request bodies as fast as a real exporter would.

Run by bench/ingest.py (``Sender``), never by hand: ``python bench/sender.py --url URL --bodies FILE
[--warmup-bodies FILE] [--connections N] [--wait-url URL]``, the ingest key in the environment (``KEY_ENV``,
never on a command line). It waits for the server, posts the warm-up bodies, reports ``ready`` and
``warmed {json}``, waits for ``go`` on stdin, posts the timed bodies (as fast as they are taken, or at
``--rate`` spans/s) and reports ``done {json}``; it ends when its stdin closes. It imports nothing of the
project, so it also runs in Phoenix's network namespace.

The body files hold (span count, body) records: ``write_bodies`` / ``read_bodies``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import struct
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import ChildProcess

KEY_ENV = "BENCH_INGEST_KEY"  # the sender reads the agent key from here (never on a command line)
RETRY_SECONDS = 900  # how long the sender retries one request answered 429/503 (Phoenix's queue full), like an exporter


# --- the body files ---------------------------------------------------------------------------------------


def write_bodies(path: Path, bodies: list[tuple[int, bytes]]) -> None:
    with open(path, "wb") as fh:
        for n, body in bodies:
            fh.write(struct.pack("<II", n, len(body)))
            fh.write(body)


def read_bodies(path: str) -> list[tuple[int, bytes]]:
    data = Path(path).read_bytes()
    out, pos = [], 0
    while pos < len(data):
        n, size = struct.unpack_from("<II", data, pos)
        pos += 8
        out.append((n, data[pos : pos + size]))
        pos += size
    return out


# --- the sender process -----------------------------------------------------------------------------------


def post_all(
    url: str, bodies: list[tuple[int, bytes]], connections: int, headers: dict[str, str], rate: float = 0
) -> dict:
    """Post every body over ``connections`` keep-alive connections; retry what a real exporter retries.

    ``rate`` (spans/s): body i is due when the spans before it at that rate have been offered, and not sent
    before (0: as fast as the server takes them). ``requests`` in the result: [due, sent, answered] wall-clock
    times (time.time()) of each body, in order."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in --url {url!r}")
    next_index = iter(range(len(bodies))).__next__
    lock = threading.Lock()
    stats: dict[str, Any] = {"acked": 0, "failed": 0, "retries": 0, "statuses": Counter(), "errors": []}
    offsets = list(itertools.accumulate((n / rate if rate else 0.0 for n, _ in bodies), initial=0.0))
    times: list[list[float]] = [[0.0, 0.0, 0.0] for _ in bodies]
    wall0 = time.time() + 0.05

    def worker() -> None:
        conn = http.client.HTTPConnection(host, parts.port, timeout=300)
        try:
            while True:
                with lock:
                    try:
                        i = next_index()
                    except StopIteration:
                        return
                n, body = bodies[i]
                due = wall0 + offsets[i]
                if due > time.time():
                    time.sleep(due - time.time())
                times[i][:2] = [due, time.time()]
                status, text, broken = 0, "", 0
                give_up = time.monotonic() + RETRY_SECONDS
                for attempt in itertools.count():  # bounded by give_up (a full queue) and 5 broken connections
                    try:
                        conn.request("POST", parts.path, body=body, headers=headers)
                        response = conn.getresponse()
                        text = response.read()[:300].decode(errors="replace")
                        status = response.status
                    except (OSError, http.client.HTTPException) as exc:
                        conn.close()
                        status, text, broken = 0, f"{type(exc).__name__}: {exc}", broken + 1
                        if broken >= 5:
                            break
                    else:
                        if status not in (429, 502, 503, 504):
                            break
                    if time.monotonic() > give_up:
                        break
                    with lock:
                        stats["retries"] += 1
                    time.sleep(min(2.0, 0.05 * 2**attempt))
                times[i][2] = time.time()
                with lock:
                    stats["statuses"][status] += 1
                    if 200 <= status < 300:
                        stats["acked"] += n
                    else:
                        stats["failed"] += n
                        if len(stats["errors"]) < 5:
                            stats["errors"].append(f"HTTP {status}: {text}")
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    t0 = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats.update(t0=t0, t_end=time.monotonic(), statuses={str(k): v for k, v in stats["statuses"].items()})
    if rate:
        stats["requests"] = times
    return stats


def sender_main(args) -> None:
    """Load the bodies, wait for the server, post the warm-up, wait for "go" on stdin, post the timed bodies.

    Reports ``ready``, ``warmed {json}`` and ``done {json}`` lines; ends when stdin closes.
    """
    headers = {"Content-Type": "application/x-protobuf"}
    if os.environ.get(KEY_ENV):
        headers["Authorization"] = f"Bearer {os.environ[KEY_ENV]}"
    bodies = read_bodies(args.bodies)
    warmup = read_bodies(args.warmup_bodies) if args.warmup_bodies else []
    if args.wait_url:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(OSError, http.client.HTTPException):
                parts = urlsplit(args.wait_url)
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
                conn.request("GET", parts.path)
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            if time.monotonic() > deadline:
                print(f"error: {args.wait_url} did not answer within 180 s", flush=True)
                return
            time.sleep(0.25)
    print("ready", flush=True)
    if warmup:
        print("warmed " + json.dumps(post_all(args.url, warmup, args.connections, headers)), flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    print("done " + json.dumps(post_all(args.url, bodies, args.connections, headers, args.rate)), flush=True)
    sys.stdin.read()


# --- the benchmark's side ---------------------------------------------------------------------------------


def sender_command(
    url: str, bodies: Path, warmup: Path, connections: int, wait_url: str = "", rate: float = 0
) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--url", url, "--bodies", str(bodies)]
    command += ["--warmup-bodies", str(warmup), "--connections", str(connections), "--rate", str(rate)]
    return command + (["--wait-url", wait_url] if wait_url else [])


class Sender(ChildProcess):
    """The sender process, seen from the benchmark: ``expect`` returns the JSON a line carries."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        super().__init__("the sender", command, env)

    def expect(self, word: str, timeout: float) -> dict:  # type: ignore[override]
        rest = super().expect(word, timeout)[len(word) :].strip()
        return json.loads(rest) if rest else {}

    def go(self) -> None:
        self.send("go")

    def close(self, timeout: float = 10) -> None:
        super().close(timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="where to post the bodies")
    parser.add_argument("--bodies", required=True, help="the timed bodies (a file of write_bodies)")
    parser.add_argument("--warmup-bodies", help="bodies posted before 'ready', untimed")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections")
    parser.add_argument("--wait-url", help="GET this until it answers 200 before starting")
    parser.add_argument("--rate", type=float, default=0, help="offered spans/s (0: as fast as taken)")
    sender_main(parser.parse_args())


if __name__ == "__main__":
    main()
