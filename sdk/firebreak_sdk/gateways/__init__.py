"""Gateways: processes that stand between an agent and what it calls (MCP servers, model APIs) and check the
agent's gate on every call, so an agent whose code nobody here controls can still be stopped.

- :mod:`firebreak_sdk.gateways.mcp` — ``firebreak-mcp-gateway``, in front of MCP servers
  (``pip install "firebreak-sdk[mcp]"``).
- :mod:`firebreak_sdk.gateways.llm` — ``firebreak-llm-gateway``, an OpenAI-compatible proxy in front of a model
  API (``pip install "firebreak-sdk[llm-gateway]"``).
"""
