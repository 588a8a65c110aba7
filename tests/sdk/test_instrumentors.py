"""Spans from the frameworks' own instrumentors read as the SDK's do: a real LangChain run traced by the real
OpenInference and OpenLLMetry instrumentors (their own venv, `make integration-venvs`), exported over OTLP to a
live Firebreak, shows the model call as its messages and model, the tool call as a tool, the run as the agent's."""

import os
import subprocess
from pathlib import Path

import pytest

from agents.keys.services import api_key_create
from traces.models import Step, Trace

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = Path(os.environ.get("FIREBREAK_VAR_DIR") or ROOT / "var") / "venvs" / "instrumentors" / "bin" / "python"
SCRIPT = Path(__file__).with_name("instrumentors") / "langchain_run.py"
AGENT = "lc-agent"
ANSWER = "Order 9 shipped on Monday."

pytestmark = pytest.mark.slow


# OpenInference sends a one-argument call's value alone ("9"), so its name is not known; OpenLLMetry sends the
# callback's envelope, opened here to the arguments.
TOOL_ARGUMENTS = {"openinference": {"input": "9"}, "openllmetry": {"order_id": "9"}}


@pytest.mark.parametrize("instrumentor", ["openinference", "openllmetry"])
def test_a_langchain_run_reads_the_same_whichever_instrumentor_sent_it(
    instrumentor, live_server, reference_data, make_agent
):
    assert VENV_PYTHON.exists(), f"{VENV_PYTHON} is missing: run `make integration-venvs`"
    agent = make_agent(AGENT)
    _, key = api_key_create(agent=agent, scopes=["ingest"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "FIREBREAK_", "DJANGO_"))}
    env |= {"FIREBREAK_URL": live_server.url, "FIREBREAK_API_KEY": key, "FIREBREAK_AGENT": AGENT}
    done = subprocess.run(
        [str(VENV_PYTHON), str(SCRIPT), "--instrumentor", instrumentor],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    steps = list(Step.objects.filter(trace__agent=agent).order_by("started_at"))
    llm = [s for s in steps if s.kind == "llm"]
    assert len(llm) == 1, [(s.name, s.kind) for s in steps]
    assert ANSWER in llm[0].output and "generations" not in llm[0].output
    assert "Where is order 9?" in llm[0].input
    assert llm[0].model.startswith("scripted-gpt-4o-mini")
    assert (llm[0].tokens_in, llm[0].tokens_out) == (42, 7)
    tools = [s for s in steps if s.kind == "tool"]
    assert [t.tool_name for t in tools] == ["lookup_order"]
    assert (tools[0].tool_arguments, tools[0].output) == (TOOL_ARGUMENTS[instrumentor], "order 9: shipped")
    (root,) = [s for s in steps if not s.parent_span_id and s.kind != "tool"]
    assert (root.kind, root.output) == ("agent", ANSWER)  # the chain is the agent's run; its answer as text
    assert Trace.objects.filter(agent=agent).count() == 2  # the chain and the tool call: two runs
