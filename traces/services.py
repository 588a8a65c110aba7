"""Writes for traces: ingest of span batches from every format."""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from agents.models import Agent
from traces.ingest.normalize import action_hash, redact
from traces.ingest.spans import IngestError, Span
from traces.ingest.writer import write_spans
from traces.signals import spans_ingested


@dataclass(frozen=True)
class IngestResult:
    received: int
    stored: int
    traces: int

    def as_dict(self) -> dict:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.received - self.stored,
            "traces": self.traces,
        }


def _resolve_agents(spans: list[Span], key_agent: Agent | None) -> dict[str, int]:
    if key_agent is not None:
        for i, s in enumerate(spans):
            if not s.agent:
                s.agent = key_agent.slug
            elif s.agent != key_agent.slug:
                raise IngestError(
                    f"spans[{i}].agent: this key belongs to agent {key_agent.slug!r} and cannot send spans "
                    f"for {s.agent[:63]!r}",
                    status=403,
                )
        return {key_agent.slug: key_agent.pk}
    slugs = {s.agent for s in spans}
    if "" in slugs:
        i = next(i for i, s in enumerate(spans) if not s.agent)
        raise IngestError(f"spans[{i}].agent: required when the key does not belong to an agent")
    found = dict(Agent.objects.filter(slug__in=slugs).values_list("slug", "pk"))
    missing = sorted(slugs - set(found))
    if missing:
        raise IngestError(f"unknown agent(s): {', '.join(m[:63] for m in missing[:5])}; register them first")
    return found


def trace_ingest(*, spans: list[Span], key_agent: Agent | None = None) -> IngestResult:
    """Store a validated batch in one transaction; idempotent on (trace id, span id).

    Tool arguments are redacted and action hashes computed before anything is
    written. Raises IngestError (nothing written) when a span names an agent
    the key may not write for, or an unknown agent. After commit,
    ``traces.signals.spans_ingested`` is sent with the traces that gained steps.
    """
    if len(spans) > settings.FIREBREAK_INGEST_MAX_SPANS:
        raise IngestError(f"{len(spans)} spans, at most {settings.FIREBREAK_INGEST_MAX_SPANS} per batch", 413)
    agent_ids = _resolve_agents(spans, key_agent)
    for s in spans:
        if s.tool_arguments is not None:
            s.tool_arguments = redact(s.tool_arguments)
        if s.tool_name:
            s.action_hash = action_hash(s.tool_name, s.tool_arguments)
    with transaction.atomic():
        result = write_spans(spans, agent_ids)
        if result.stored:
            trace_pks = sorted(result.trace_ids.values())
            agents = sorted(set(agent_ids.values()))
            transaction.on_commit(
                lambda: spans_ingested.send(
                    sender=trace_ingest, trace_pks=trace_pks, agent_ids=agents, stored=result.stored
                )
            )
    return IngestResult(received=len(spans), stored=result.stored, traces=len({s.trace_id for s in spans}))
