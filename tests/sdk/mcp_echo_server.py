"""A real MCP server for the gateway's tests and bench: ``lookup_order``, ``issue_refund`` and ``echo`` over stdio.

Usage: ``mcp_echo_server.py [COUNT_FILE] [--http PORT] [--crash]``. With a count file, every tool call appends
one line (the tool's name) to it before answering, so a test can prove that a refused call never reached the
server. With ``--http PORT`` it serves streamable HTTP at ``http://127.0.0.1:PORT/mcp`` instead of stdio. With
``--crash`` it also has a ``crash`` tool that exits the process (code 3) without answering. It serves one
resource, ``orders://policy``.
"""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import MCPServer

ARGS = sys.argv[1:]
HTTP_PORT = int(ARGS.pop(ARGS.index("--http") + 1)) if "--http" in ARGS else None
CRASH = "--crash" in ARGS
COUNT_FILE = next((a for a in ARGS if not a.startswith("--")), "")

app = MCPServer("orders")


def _count(tool: str) -> None:
    if COUNT_FILE:
        with open(COUNT_FILE, "a") as f:
            f.write(tool + "\n")


@app.tool()
def lookup_order(order_id: int) -> str:
    """The status and total of an order."""
    _count("lookup_order")
    return f"order {order_id}: delivered, total $30"


@app.tool()
def issue_refund(order_id: int, amount: float) -> str:
    """Refund an order."""
    _count("issue_refund")
    return f"refunded ${amount:g} on order {order_id}"


@app.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    _count("echo")
    return text


@app.resource("orders://policy")
def refund_policy() -> str:
    """The refund policy the agent reads before refunding."""
    return "Refunds over $100 need a human."


if CRASH:

    @app.tool()
    def crash() -> str:
        """Exit the server without answering."""
        _count("crash")
        os._exit(3)


if __name__ == "__main__":
    if HTTP_PORT is None:
        app.run()
    else:
        app.run("streamable-http", host="127.0.0.1", port=HTTP_PORT)
