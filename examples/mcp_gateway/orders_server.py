"""A tiny MCP server to put behind firebreak-mcp-gateway: an order lookup and a refund, over stdio.

firebreak-mcp-gateway --agent support-bot -- python examples/mcp_gateway/orders_server.py
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

app = MCPServer("orders")

ORDERS = {42: ("delivered", 30.0), 43: ("in transit", 12.5)}


@app.tool()
def lookup_order(order_id: int) -> str:
    """The status and total of an order."""
    status, total = ORDERS.get(order_id, ("unknown", 0.0))
    return f"order {order_id}: {status}, total ${total:g}"


@app.tool()
def issue_refund(order_id: int, amount: float) -> str:
    """Refund (part of) an order."""
    return f"refunded ${amount:g} on order {order_id}"


if __name__ == "__main__":
    app.run()
