"""Gateways: processes that stand between an agent and what it calls, and check the gate on every call.

- :mod:`firebreak_sdk.gateways.llm` — ``firebreak-llm-gateway``, an OpenAI-compatible proxy in front of a model
  API (``pip install "firebreak-sdk[llm-gateway]"``).
"""
