"""Framework integrations: the gate, the budget guard and the tracer inside a framework's own run.

Each module is a few lines for the user and enforces the same things at the framework's own seams: a gate
check before every model call and every tool call (passing the session and user), the framework's own
cancellation when the agent is killed or paused (the stop is raised so the framework aborts the run), a
tool outside the agent's ``allowed_tools`` refused before the call (``ToolNotAllowed``, recorded as a
refusal span), the run's :class:`~firebreak_sdk.BudgetGuard` fed with the framework's token usage, and one
Firebreak run per framework run with its llm and tool steps.

- :mod:`firebreak_sdk.integrations.langgraph` — LangGraph and LangChain (``pip install "firebreak-sdk[langgraph]"``).
- :mod:`firebreak_sdk.integrations.openai_agents` — the OpenAI Agents SDK (``[openai-agents]``).
- :mod:`firebreak_sdk.integrations.pydantic_ai` — Pydantic AI (``[pydantic-ai]``).

Importing a module needs its framework installed; ``firebreak_sdk`` itself never imports them.
"""
