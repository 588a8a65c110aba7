"""A scripted agent that calls its tools through firebreak-mcp-gateway, as any MCP client would.

    python examples/mcp_gateway/agent.py [AGENT]   # default support-bot; FIREBREAK_* from the environment

It starts the gateway (which starts orders_server.py), lists the tools and calls lookup_order then
issue_refund, printing each answer. Kill the agent (``firebreak kill support-bot --reason ...``) and run it
again: every call answers with an error that says who killed it and why, and the server is never called.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

HERE = Path(__file__).resolve().parent
GATEWAY = str(Path(sys.executable).with_name("firebreak-mcp-gateway"))


async def main(agent: str) -> None:
    command = ["--agent", agent, "--", sys.executable, str(HERE / "orders_server.py")]
    params = StdioServerParameters(command=GATEWAY, args=command, env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        print("tools:", ", ".join(t.name for t in tools.tools))
        for name, arguments in (("lookup_order", {"order_id": 42}), ("issue_refund", {"order_id": 42, "amount": 30})):
            result = await session.call_tool(name, arguments)
            text = " ".join(getattr(block, "text", "") for block in result.content)
            print(f"{name}: {'REFUSED ' if result.is_error else ''}{text}")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "support-bot")
