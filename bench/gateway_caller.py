"""An agent that calls through a gateway back to back, in a process of its own, for the kill benchmarks.

The benchmark (``mcp_gateway.py``, ``llm_gateway.py``) kills the agent while this process keeps calling, as a
running agent would: nothing the benchmark does (its kill request, its Redis listener) shares a process or a
GIL with the calls. The clock is ``time.perf_counter()``, CLOCK_MONOTONIC on Linux, the same in every process.

Protocol (``harness.ChildProcess``): on each ``go`` line, call until a call passes (the resume has arrived),
report ``running``, call until one is refused and report ``refused <perf_counter of its answer> <its text>``.
Stdin closed: exit.

    gateway_caller.py mcp <gateway command …>     (stdio; calls the tool ``echo``)
    gateway_caller.py llm <chat completions URL>
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import anyio

ECHO = {"text": "order 42: delivered, total $30"}
BODY = json.dumps({"model": "scripted", "messages": [{"role": "user", "content": "hello there, how are you today"}]})


def report(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def llm(url: str) -> None:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)

    def call() -> tuple[bool, str]:
        connection.request("POST", parts.path, BODY, {"content-type": "application/json"})
        response = connection.getresponse()
        body = response.read()
        if response.status == 200:
            return True, ""
        if response.status != 403:
            raise RuntimeError(f"the gateway answered {response.status}: {body[:300]!r}")
        return False, json.loads(body)["error"]["message"]

    for line in sys.stdin:
        if line.strip() != "go":
            continue
        while not call()[0]:
            time.sleep(0.005)
        report("running")
        while True:
            passed, text = call()
            if not passed:
                report(f"refused {time.perf_counter():.6f} {text}")
                break


async def mcp(command: list[str]) -> None:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()

        async def call() -> tuple[bool, str]:
            result: Any = await session.call_tool("echo", ECHO)
            text = str(getattr(result.content[0], "text", "")) if result.content else ""
            return not result.is_error, text

        while line := await anyio.to_thread.run_sync(sys.stdin.readline):
            if line.strip() != "go":
                continue
            while not (await call())[0]:
                await anyio.sleep(0.005)
            report("running")
            while True:
                passed, text = await call()
                if not passed:
                    report(f"refused {time.perf_counter():.6f} {text}")
                    break


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "llm":
        llm(rest[0])
    else:
        anyio.run(mcp, rest)
