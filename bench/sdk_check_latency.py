"""Latency of Gate.check() over Redis: the cached-fresh path and the forced-GET path (max_staleness=0).

Usage: python sdk/benchmarks/check_latency.py <redis-url> [checks]   (the URL's database gets one test key)
"""

import json
import statistics
import sys
import time

import redis

from firebreak_sdk import Gate

AGENT = "bench-agent"


def measure(gate: Gate, n: int) -> list[float]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        gate.check(tool="lookup_order")
        samples.append((clock() - start) / 1000)  # µs
    return samples


def report(name: str, samples: list[float]) -> None:
    q = statistics.quantiles(samples, n=1000)
    print(
        f"{name:<30} n={len(samples)}  p50={q[499]:.2f} µs  p99={q[989]:.2f} µs  "
        f"p99.9={q[998]:.2f} µs  max={max(samples):.1f} µs"
    )


def main() -> None:
    url, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    client = redis.Redis.from_url(url)
    doc = {"agent": AGENT, "state": "active", "reason": "", "disabled_tools": ["refund"], "version": 1,
           "budget": {"frozen": False, "session_cost_cap": 5.0}, "fallback_message": "unavailable"}  # fmt: skip
    client.set(f"firebreak:gate:{AGENT}", json.dumps(doc))
    try:
        with Gate(AGENT, redis_url=url) as gate:  # default: max_staleness=1.0, subscribed
            measure(gate, 1000)
            report("cached (max_staleness=1.0)", measure(gate, n))
        with Gate(AGENT, redis_url=url, max_staleness=0, subscribe=False) as gate:
            measure(gate, 1000)
            report("forced GET (max_staleness=0)", measure(gate, n))
    finally:
        client.delete(f"firebreak:gate:{AGENT}")


if __name__ == "__main__":
    main()
