"""Gateways: processes that stand between an agent and what it calls (MCP servers, model APIs) and check the
agent's gate on every call, so an agent whose code nobody here controls can still be stopped."""
