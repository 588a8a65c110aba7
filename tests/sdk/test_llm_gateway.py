"""The LLM gateway as a real process (``python -m firebreak_sdk.gateways.llm``) between the real ``openai`` client and
a scripted OpenAI-compatible upstream process, with its gate, budget and spans in a real Firebreak (live_server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import httpx
import openai
import pytest
from firebreak_sdk import AgentKilled, Blocked, BudgetExceeded, BudgetFrozen, GateUnavailable, ToolNotAllowed
from firebreak_sdk.gateways.llm import Price, build_parser, error_body, main, parse_price, refusal_status
from openai import OpenAI

from agents import containment
from agents.keys.services import api_key_create
from core.actors import Actor
from core.redis import gate_redis_url
from traces.models import Step, Trace

from .conftest import free_port, wait_until
from .fake_openai_upstream import SLOW_WORDS

UPSTREAM_SCRIPT = Path(__file__).with_name("fake_openai_upstream.py")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "llm_gateway_agent.py"
AGENT = "llm-bot"
HELLO = [{"role": "user", "content": "hello there"}]  # 2 prompt tokens; answer "echo: hello there", 3 tokens


class Upstream:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, str(UPSTREAM_SCRIPT), str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_until(self._up, timeout=20, interval=0.05)

    def _up(self) -> bool:
        assert self.proc.poll() is None, f"the upstream died: {self.proc.stderr.read()}"  # type: ignore[union-attr]
        try:
            return httpx.get(f"{self.url}/_stats", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/_stats", timeout=5).json()

    def calls(self, route: str = "chat") -> int:
        return self.stats()["calls"][route]


class Gateway:
    def __init__(
        self, agent: str, key: str, firebreak_url: str, upstream: Upstream, *args: str, redis: bool, **env: str
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")}
        environ |= {
            "FIREBREAK_URL": firebreak_url,
            "FIREBREAK_API_KEY": key,
            "FIREBREAK_GATE_PUBLIC_KEY": os.environ["FIREBREAK_GATE_PUBLIC_KEY"],
            **env,
        }
        if redis:  # the gate over Redis, kills pushed on its channel (live_server, WSGI, has no gate stream)
            environ["FIREBREAK_REDIS_URL"] = gate_redis_url()
        command = [sys.executable, "-m", "firebreak_sdk.gateways.llm", "--agent", agent]
        command += ["--upstream", f"{upstream.url}/v1", "--listen", f"127.0.0.1:{self.port}", *args]
        self.proc = subprocess.Popen(command, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(self._up, timeout=20, interval=0.05)

    def _up(self) -> bool:
        assert self.proc.poll() is None, f"the gateway died: {self.proc.stderr.read().decode()}"  # type: ignore[union-attr]
        try:
            return httpx.get(f"{self.url}/v1/models", timeout=1).status_code < 500  # passed through to the upstream
        except httpx.HTTPError:
            return False

    def client(self, api_key: str = "client-key", **headers: str) -> OpenAI:
        return OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, default_headers=headers or None)

    def stop(self) -> None:
        """SIGTERM, as a supervisor stops it: it ends its sessions' runs and flushes their spans."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.proc.kill()
    server.proc.wait()


@pytest.fixture
def firebreak(live_server, reference_data, make_agent):
    def make(slug: str = AGENT, **kwargs) -> SimpleNamespace:
        agent = make_agent(slug, **kwargs)
        _, key = api_key_create(agent=agent, scopes=["ingest", "gate"])
        return SimpleNamespace(url=live_server.url, agent=agent, key=key)

    return make


@pytest.fixture
def start_gateway(upstream) -> Iterator:
    gateways: list[Gateway] = []

    def start(fb: SimpleNamespace, *args: str, redis: bool = True, **env: str) -> Gateway:
        gateway = Gateway(fb.agent.slug, fb.key, fb.url, upstream, *args, redis=redis, **env)
        gateways.append(gateway)
        return gateway

    yield start
    for gateway in gateways:
        gateway.stop()


@pytest.fixture
def kill(make_client, responder):
    def kill(slug: str, reason: str) -> None:
        response = make_client(responder).post(
            f"/api/v1/agents/{slug}/kill", {"reason": reason}, content_type="application/json"
        )
        assert response.status_code == 200, response.content

    return kill


def llm_steps(agent) -> list[Step]:
    return list(Step.objects.filter(trace__agent=agent, kind="llm").order_by("started_at"))


@pytest.mark.slow  # a Firebreak, an upstream and a gateway process
def test_calls_pass_through_and_their_spans_land_in_firebreak(firebreak, start_gateway, upstream):
    fb = firebreak()
    gateway = start_gateway(fb, "--price", "scripted=1,2")
    client = gateway.client(**{"X-Firebreak-Session": "conv-1", "X-Firebreak-User": "u-7"})
    before = upstream.stats()["calls"]

    reply = client.chat.completions.create(model="scripted", messages=HELLO)
    assert reply.choices[0].message.content == "echo: hello there"
    assert upstream.stats()["authorization"] == "Bearer client-key"  # no FIREBREAK_UPSTREAM_API_KEY: passed through

    chunks = list(client.chat.completions.create(model="scripted", messages=HELLO, stream=True))
    # the client did not ask for usage: the usage chunk the gateway asked for itself is not shown to it
    assert all(chunk.choices for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: hello there"

    response = client.responses.create(model="scripted", input="hello again there")
    assert response.output_text == "echo: hello again there"
    events = list(client.responses.create(model="scripted", input="stream me", stream=True))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "echo: stream me"
    assert events[-1].type == "response.completed"
    with pytest.raises(openai.NotFoundError, match="does not exist") as raised:  # the upstream's error, as it sent it
        client.chat.completions.create(model="missing", messages=HELLO)
    assert raised.value.body["code"] == "model_not_found"
    embeddings = client.embeddings.create(model="embedder", input=["one two", "three"])
    assert [e.embedding[1] for e in embeddings.data] == [0.0, 1.0]
    assert [m.id for m in client.models.list()] == ["scripted"]
    unknown = httpx.post(f"{gateway.url}/v1/completions", json={"prompt": "hi"})  # legacy: not served
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    wrong = httpx.get(f"{gateway.url}/v1/chat/completions")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "POST")
    after = upstream.stats()["calls"]
    assert {k: after[k] - before[k] for k in ("chat", "responses", "embeddings")} == {
        "chat": 3, "responses": 2, "embeddings": 1,
    }  # fmt: skip

    steps = wait_until(lambda: (s := llm_steps(fb.agent)) and len(s) == 6 and s, timeout=15)
    chat, stream, resp, resp_stream, failed, emb = steps
    assert (chat.model, chat.tokens_in, chat.tokens_out, chat.finish_reason) == ("scripted", 2, 3, "stop")
    assert chat.cost == Decimal("0.008")  # 2 in at $1/1k + 3 out at $2/1k
    assert "echo: hello there" in chat.output and "hello there" in chat.input
    assert (stream.tokens_in, stream.tokens_out, stream.finish_reason, stream.status) == (2, 3, "stop", "ok")
    assert stream.output == "echo: hello there"
    assert (resp.name, resp.tokens_in, resp.tokens_out, resp.finish_reason) == ("responses", 3, 4, "stop")
    assert (resp_stream.output, resp_stream.tokens_in, resp_stream.tokens_out) == ("echo: stream me", 2, 3)
    assert resp_stream.finish_reason == "stop"
    assert (emb.name, emb.tokens_in, emb.model) == ("embeddings", 3, "embedder")
    assert (failed.status, failed.model) == ("error", "missing") and "upstream answered 404" in failed.error_message
    assert len({s.trace_id for s in steps}) == 1  # one run for the session

    gateway.stop()  # ends the session's run: the trajectory gets its session and user
    trace = wait_until(lambda: Trace.objects.filter(agent=fb.agent, session_id="conv-1").first(), timeout=15)
    assert (trace.user_id, trace.status, trace.step_count) == ("u-7", "ok", 7)


@pytest.mark.slow  # a Firebreak, an upstream and a gateway process
def test_a_killed_agents_call_raises_with_the_kills_reason_and_never_reaches_the_upstream(
    firebreak, start_gateway, upstream, kill
):
    fb = firebreak()
    gateway = start_gateway(fb)
    client = gateway.client()
    # the example agent runs through the gateway: two answers and a streamed one
    example = subprocess.run(
        [sys.executable, str(EXAMPLE), "--gateway", f"{gateway.url}/v1", "--model", "scripted"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "OPENAI_API_KEY": "client-key"},
    )  # fmt: skip
    assert example.returncode == 0, example.stderr
    assert "echo: Write five short sentences" in example.stdout
    client.chat.completions.create(model="scripted", messages=HELLO)
    kill(AGENT, "refunding everyone")

    def refused() -> openai.PermissionDeniedError | None:
        calls = upstream.calls()
        try:
            client.chat.completions.create(model="scripted", messages=HELLO)
        except openai.PermissionDeniedError as exc:
            assert upstream.calls() == calls, "the refused call reached the upstream"
            return exc
        time.sleep(0.02)  # the kill is on its way (pushed): try again
        return None

    exc = wait_until(refused, timeout=10)
    assert exc.status_code == 403
    assert exc.body["type"] == "firebreak_gate_closed" and exc.body["code"] == "AgentKilled"
    assert "refunding everyone" in exc.message
    calls = upstream.stats()["calls"]
    with pytest.raises(openai.PermissionDeniedError, match="refunding everyone"):
        client.chat.completions.create(model="scripted", messages=HELLO, stream=True)
    with pytest.raises(openai.PermissionDeniedError, match="refunding everyone"):
        client.responses.create(model="scripted", input="hi")
    with pytest.raises(openai.PermissionDeniedError, match="refunding everyone"):
        client.embeddings.create(model="embedder", input="hi")
    assert upstream.stats()["calls"] == calls
    # the session's trajectory shows the refused call and ends as killed
    trace = wait_until(lambda: Trace.objects.filter(agent=fb.agent, status="killed").first(), timeout=15)
    refused = trace.steps.get(name="refused")
    assert refused.status == "error" and refused.attributes["firebreak.refused"] == "AgentKilled"

    # the example agent stops on the refusal and says why
    example = subprocess.run(
        [sys.executable, str(EXAMPLE), "--gateway", f"{gateway.url}/v1", "--model", "scripted"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "OPENAI_API_KEY": "client-key"},
    )  # fmt: skip
    assert example.returncode == 3, example.stderr
    assert "stopped by Firebreak: AgentKilled: llm-bot was killed by" in example.stderr
    assert "refunding everyone" in example.stderr


@pytest.mark.slow  # a Firebreak, an upstream and a gateway process
def test_a_kill_during_a_stream_cuts_it_and_closes_the_upstream_connection(firebreak, start_gateway, upstream, kill):
    fb = firebreak()
    client = start_gateway(fb).client(**{"X-Firebreak-Session": "s-stream"})
    cut_before = upstream.stats()["streams_cut"]
    words: list[str] = []
    stream = client.chat.completions.create(model="scripted-slow", messages=HELLO, stream=True)
    with pytest.raises(openai.APIError, match="stopping the stream now") as raised:
        for chunk in stream:
            words.append(chunk.choices[0].delta.content or "")
            if len([w for w in words if w]) == 3:
                kill(AGENT, "stopping the stream now")
    assert raised.value.body["code"] == "AgentKilled"
    assert 3 <= len([w for w in words if w]) < SLOW_WORDS  # the upstream would have sent them all
    wait_until(lambda: upstream.stats()["streams_cut"] == cut_before + 1, timeout=10)

    step = wait_until(lambda: (s := llm_steps(fb.agent)) and s[0], timeout=15)
    assert step.status == "error" and "stream cut by the gate" in step.error_message
    assert step.attributes["firebreak.refused"] == "AgentKilled"
    assert step.output.startswith("w1 w2 w3")
    assert wait_until(lambda: Trace.objects.filter(agent=fb.agent, session_id="s-stream", status="killed").exists())


@pytest.mark.slow  # a Firebreak, an upstream and a gateway process
def test_the_budget_cap_refuses_the_next_call_once_the_sessions_usage_crossed_it(firebreak, start_gateway, upstream):
    fb = firebreak(session_cost_cap=Decimal("0.02"))
    gateway = start_gateway(fb, "--price", "scripted=1,2")  # each call: $0.008
    client = gateway.client(**{"X-Firebreak-Session": "s-1"})
    calls = upstream.calls()
    for _ in range(3):  # spent 0, 0.008, 0.016: under the cap before each
        client.chat.completions.create(model="scripted", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as raised:  # spent 0.024: over it
        client.chat.completions.create(model="scripted", messages=HELLO)
    assert raised.value.status_code == 429 and raised.value.body["code"] == "BudgetExceeded"
    assert "session cost cap" in raised.value.message
    assert upstream.calls() == calls + 3
    # the budget is per session: another one still runs
    other = gateway.client(**{"X-Firebreak-Session": "s-2"})
    assert other.chat.completions.create(model="scripted", messages=HELLO).choices[0].message.content
    assert upstream.calls() == calls + 4


@pytest.mark.slow  # a Firebreak, an upstream and a gateway process
def test_the_upstream_key_a_forced_tool_outside_the_allowed_set_and_a_blocked_user(
    firebreak, start_gateway, upstream, responder
):
    fb = firebreak(allowed_tools=["lookup_order"])
    gateway = start_gateway(fb, FIREBREAK_UPSTREAM_API_KEY="upstream-secret")
    client = gateway.client(api_key="agent-side-key")
    client.chat.completions.create(model="scripted", messages=HELLO)
    assert upstream.stats()["authorization"] == "Bearer upstream-secret"

    tools = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
        for n in ("lookup_order", "issue_refund")
    ]
    forced = {"type": "function", "function": {"name": "lookup_order"}}
    client.chat.completions.create(model="scripted", messages=HELLO, tools=tools, tool_choice=forced)
    calls = upstream.calls()
    with pytest.raises(openai.PermissionDeniedError, match="issue_refund is not among") as raised:
        forced = {"type": "function", "function": {"name": "issue_refund"}}
        client.chat.completions.create(model="scripted", messages=HELLO, tools=tools, tool_choice=forced)
    assert raised.value.body["code"] == "ToolNotAllowed"
    assert upstream.calls() == calls
    # tools the model may pick are the model's business: without a forced choice the call passes
    client.chat.completions.create(model="scripted", messages=HELLO, tools=tools, tool_choice="auto")
    assert upstream.calls() == calls + 1

    # a body that is not a JSON object is answered 400, never forwarded
    for bad in (b"not json", b"[1, 2]"):
        answer = httpx.post(f"{gateway.url}/v1/chat/completions", content=bad, timeout=10)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_json"
    assert upstream.calls() == calls + 1

    # a blocked user (the body's `user`) is refused; other users carry on
    containment.agent_block(agent=fb.agent, kind="user", value="u-bad", ttl_seconds=60, actor=Actor.person(responder))

    def blocked() -> openai.PermissionDeniedError | None:
        try:
            client.chat.completions.create(model="scripted", messages=HELLO, user="u-bad")
        except openai.PermissionDeniedError as exc:
            return exc
        time.sleep(0.02)  # the block is on its way (pushed)
        return None

    assert wait_until(blocked, timeout=10).body["code"] == "Blocked"
    calls = upstream.calls()
    client.chat.completions.create(model="scripted", messages=HELLO, user="u-good")
    assert upstream.calls() == calls + 1


@pytest.mark.slow  # a Firebreak, an upstream and a gateway process
def test_an_unreadable_gate_fails_closed_with_503_and_nothing_reaches_the_upstream(firebreak, start_gateway, upstream):
    fb = firebreak()
    fb.url = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the gate cannot be read
    client = start_gateway(fb, redis=False).client()
    calls = upstream.calls()
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="scripted", messages=HELLO)
    assert raised.value.status_code == 503 and raised.value.body["code"] == "GateUnavailable"
    assert "failing closed" in raised.value.message
    assert upstream.calls() == calls


# --- the parts without processes ----------------------------------------------------------------------------


def test_refusals_map_to_the_statuses_the_openai_client_understands():
    assert refusal_status(AgentKilled("a", reason="x")) == 403
    assert refusal_status(ToolNotAllowed("a", "t")) == 403
    assert refusal_status(Blocked("a", "session", "s")) == 403
    assert refusal_status(BudgetExceeded("over", limit="session_cost_cap")) == 429
    assert refusal_status(BudgetFrozen("a")) == 429
    assert refusal_status(GateUnavailable("a", reason="down")) == 503
    assert error_body(AgentKilled("a", reason="runaway", changed_by="alice")) == {
        "error": {"message": "a was killed by alice: runaway", "type": "firebreak_gate_closed", "code": "AgentKilled",
                  "param": None}
    }  # fmt: skip


def test_bad_arguments_are_refused_before_start_with_what_is_wrong(capsys):
    assert parse_price("gpt-4o=0.0025,0.01") == ("gpt-4o", Price(0.0025, 0.01))
    assert Price(1, 2).cost(2, 3) == pytest.approx(0.008)
    for bad in ("gpt-4o", "gpt-4o=1", "=1,2", "gpt-4o=a,b", "gpt-4o=-1,2"):
        with pytest.raises(ValueError, match="price"):
            parse_price(bad)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--agent", "a", "--upstream", "http://x/v1", "--price", "gpt-4o=1"])
    assert "expected model=in_per_1k,out_per_1k" in capsys.readouterr().err
    for args, says in (
        (["--upstream", "api.openai.com"], "expected an http:// or https:// URL"),
        (["--upstream", "http://x/v1", "--listen", "8787"], "expected HOST:PORT"),
        (["--upstream", "http://x/v1", "--session-idle", "0"], "must be more than 0 seconds"),
    ):
        with pytest.raises(SystemExit):
            main(["--agent", "a", *args])  # refused before a gate, a tracer or a server is made
        assert says in capsys.readouterr().err
