"""The signature of a blast radius and its window, read from query or form parameters.

A signature is a conjunction of criteria: step-level ones (tool name, argument text or regex,
action hash) must hold on one and the same step; trace-level ones (agents, model/prompt
version, input class) filter the trace. Bad input raises :class:`BlastParamError` naming the
parameter, for the page, the CSV export and the API alike.
"""

from __future__ import annotations

import re
import re._parser as regex_parser  # type: ignore[import-not-found]  # Python's own regex parser (sre_parse)
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DataError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from agents.models import Agent
from incidents.models import Incident
from traces.models import Step, Trace

REGEX_PREFIX = "re:"
# pg_trgm serves an argument search only from text of 3 or more characters that every match contains.
INDEXABLE_CHARS = 3
DEFAULT_LOOKBACK = timedelta(hours=24)
VALUE_MAX = 500
# Query parameters, shared by the page, the CSV export and the API.
PARAMS = ("tool", "args", "model_version", "prompt_version", "input_class", "action_hash", "trace", "agent")


class BlastParamError(ValueError):
    """A bad blast-radius parameter; ``param`` names it for the 400 answer."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class BlastSignature:
    tool: str = ""
    args: str = ""  # substring (case-insensitive) of the arguments as JSON text, or "re:<regex>"
    model_version: str = ""
    prompt_version: str = ""
    input_class: str = ""
    action_hash: str = ""
    trace: str = ""  # the trace whose flagged step gave action_hash (informational once resolved)
    agents: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (
            self.tool
            or self.args
            or self.model_version
            or self.prompt_version
            or self.input_class
            or self.action_hash
            or self.agents
        )

    @property
    def has_step_criteria(self) -> bool:
        return bool(self.tool or self.args or self.action_hash)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "args": self.args,
            "model_version": self.model_version,
            "prompt_version": self.prompt_version,
            "input_class": self.input_class,
            "action_hash": self.action_hash,
            "trace": self.trace,
            "agents": list(self.agents),
        }

    def as_params(self) -> list[tuple[str, str]]:
        """Query parameters that reproduce this signature (for links and the CSV export)."""
        pairs = [(k, v) for k, v in self.as_dict().items() if k != "agents" and v]
        pairs += [("agent", slug) for slug in self.agents]
        return pairs

    def describe(self) -> str:
        parts: list[str] = []
        if self.agents:
            parts.append("agent " + ", ".join(self.agents))
        if self.tool:
            parts.append(f"tool {self.tool}")
        if self.args:
            if self.args.startswith(REGEX_PREFIX):
                parts.append(f"arguments ~ /{self.args[len(REGEX_PREFIX) :]}/i")
            else:
                parts.append(f"arguments contain “{self.args}”")
        if self.action_hash:
            parts.append(
                f"action hash {self.action_hash}" + (f" (flagged in trace {self.trace})" if self.trace else "")
            )
        if self.model_version:
            parts.append(f"model {self.model_version}")
        if self.prompt_version:
            parts.append(f"prompt {self.prompt_version}")
        if self.input_class:
            parts.append(f"input class {self.input_class}")
        return "; ".join(parts) or "(none)"


def _text(params: Mapping[str, Any], name: str) -> str:
    value: str = (params.get(name) or "").strip()
    if len(value) > VALUE_MAX:
        raise BlastParamError(name, f"longer than {VALUE_MAX} characters")
    return value


def _time(params: Mapping[str, Any], name: str) -> datetime | None:
    raw: str = (params.get(name) or "").strip()
    if not raw:
        return None
    if "T" in raw and " " in raw:
        raw = raw.replace(" ", "+")  # an unencoded "+00:00" arrives as " 00:00"
    elif " " in raw:
        raw = raw.replace(" ", "T", 1)
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise BlastParamError(name, f"not an ISO 8601 time: {raw[:60]!r}")
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


# A backslash-escaped digit (an odd number of backslashes before it) or a named group reference.
BACK_REFERENCE = re.compile(r"(?<!\\)(?:\\\\)*\\[1-9]|\(\?P=|\\k<")


def regex_validate(pattern: str) -> None:
    """Raise ValueError unless both Python and PostgreSQL accept ``pattern`` and it matches in linear time.

    PostgreSQL matches a regular expression with automata, in time linear in the text, except when it has
    back-references (``\\1``), which need backtracking: ``(a*)*\\1!`` over 30k characters ran 18 s. They
    are refused; the text scanned is bounded too (``FIREBREAK_BLAST_REGEX_SCAN_CHARS``).
    """
    if not pattern:
        raise ValueError("empty regular expression")
    if BACK_REFERENCE.search(pattern):
        raise ValueError("back-references (\\1, (?P=name)) are not supported: they make matching exponential")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT '' ~* %s", [pattern])
    except DataError as exc:
        raise ValueError(f"invalid regular expression: {str(exc).strip().splitlines()[0]}") from None


def regex_required_text(pattern: str) -> int:
    """The length of the longest run of literal characters every match of ``pattern`` must contain.

    What pg_trgm can look up in its index: ``refund.*[0-9]{4}`` needs "refund" (6), ``(abc|defg)x`` needs 3
    (each branch holds a run of 3 or more), ``[a-z]+ok`` needs 2. Groups, classes, optional parts and
    branches break a run; the count is a lower bound.
    """
    return _required_run(regex_parser.parse(pattern))


def _required_run(items: Any) -> int:
    best = run = 0
    for op, arg in items:
        if op is regex_parser.LITERAL:
            run += 1
            continue
        if op is regex_parser.AT:  # ^, $, \b: zero-width, the run goes on
            continue
        best, run = max(best, run), 0
        if op is regex_parser.SUBPATTERN:
            best = max(best, _required_run(arg[-1]))
        elif op is regex_parser.BRANCH:
            best = max(best, min(_required_run(branch) for branch in arg[1]))
        elif op in (regex_parser.MAX_REPEAT, regex_parser.MIN_REPEAT, regex_parser.POSSESSIVE_REPEAT) and arg[0] >= 1:
            best = max(best, _required_run(arg[2]))
    return max(best, run)


def flagged_action_hash(trace_id: str) -> tuple[str, str]:
    """(action_hash, tool_name) of the flagged step of trace ``trace_id``; ValueError if none.

    ``trace_id`` may be ``<trace id>@<agent>``: a trace id may hold several agents' trajectories. A bare
    id takes the first flagged trajectory of that id.
    """
    bare, _, agent = trace_id.partition("@")
    qs = Trace.objects.filter(trace_id=bare)
    if agent:
        qs = qs.filter(agent__slug=agent)
    trace = qs.only("id", "flagged_span_id").order_by(F("flagged_at").desc(nulls_last=True), "started_at", "id").first()
    if trace is None:
        raise ValueError(f"no trace {trace_id!r}")
    if not trace.flagged_span_id:
        raise ValueError(f"trace {trace_id!r} has no flagged step")
    step = Step.objects.filter(trace=trace, span_id=trace.flagged_span_id).only("action_hash", "tool_name").first()
    if step is None or not step.action_hash:
        raise ValueError(f"the flagged step of trace {trace_id!r} is not a tool call with an action hash")
    return step.action_hash, step.tool_name


def _indexable_or_refuse(args: str) -> None:
    """Without a tool or an action hash, the argument search alone picks the steps: it must give the trigram
    index something to look up, or it would read every step of the window."""
    if args.startswith(REGEX_PREFIX):
        if regex_required_text(args[len(REGEX_PREFIX) :]) < INDEXABLE_CHARS:
            raise BlastParamError(
                "args",
                f"this regular expression has no literal text of {INDEXABLE_CHARS} or more characters that every "
                "match must contain, so no index can narrow the search: add such text (e.g. "
                "re:refund.*[0-9]{4}), or a tool or an action hash",
            )
    elif len(args) < INDEXABLE_CHARS:
        raise BlastParamError(
            "args", f"search at least {INDEXABLE_CHARS} characters of the arguments, or add a tool or an action hash"
        )


def signature_parse(
    params: Mapping[str, Any], *, incident: Incident, now: datetime | None = None
) -> tuple[BlastSignature, datetime, datetime]:
    """Read a signature and window from query/form parameters.

    Returns ``(signature, since, until)``; raises :class:`BlastParamError` naming the bad
    parameter. The default window runs from 24 h before the incident was declared until now.
    """
    now = now or timezone.now()
    values = {name: _text(params, name) for name in PARAMS if name != "agent"}
    getlist = getattr(params, "getlist", None)
    raw_agents = getlist("agent") if getlist else params.get("agent") or []
    if isinstance(raw_agents, str):
        raw_agents = [raw_agents]
    agents: list[str] = []
    for item in raw_agents:
        for slug in str(item).split(","):
            slug = slug.strip()
            if slug and slug not in agents:
                agents.append(slug)
    if agents:
        known = set(Agent.objects.filter(slug__in=agents).values_list("slug", flat=True))
        unknown = [slug for slug in agents if slug not in known]
        if unknown:
            raise BlastParamError("agent", "no agent " + ", ".join(repr(s) for s in unknown))

    args = values["args"]
    if args.startswith(REGEX_PREFIX):
        try:
            regex_validate(args[len(REGEX_PREFIX) :])
        except ValueError as exc:
            raise BlastParamError("args", str(exc)) from None

    if args and not (values["tool"] or values["action_hash"] or values["trace"]):
        _indexable_or_refuse(args)

    action_hash = values["action_hash"]
    if action_hash and not re.fullmatch(r"[0-9a-fA-F]{1,16}", action_hash):
        raise BlastParamError("action_hash", "not a hexadecimal action hash")
    action_hash = action_hash.lower()
    if values["trace"]:
        try:
            flagged_hash, _tool = flagged_action_hash(values["trace"])
        except ValueError as exc:
            raise BlastParamError("trace", str(exc)) from None
        if action_hash and action_hash != flagged_hash:
            raise BlastParamError("action_hash", "differs from the action hash of the trace's flagged step")
        action_hash = flagged_hash

    signature = BlastSignature(
        tool=values["tool"],
        args=args,
        model_version=values["model_version"],
        prompt_version=values["prompt_version"],
        input_class=values["input_class"],
        action_hash=action_hash,
        trace=values["trace"],
        agents=tuple(agents),
    )
    if signature.is_empty:
        raise BlastParamError(
            "signature",
            "give at least one of tool, args, model_version, prompt_version, input_class, action_hash, trace, agent",
        )

    since = _time(params, "since") or incident.declared_at - DEFAULT_LOOKBACK
    until = _time(params, "until") or now
    if since >= until:
        raise BlastParamError("until", "the window is reversed or empty: until must be after since")
    return signature, since, until


def signature_default(*, incident: Incident) -> tuple[BlastSignature, str]:
    """The form's starting point: the incident's agents and its first flagged step.

    Returns the signature and the trace id the flagged step came from ("" if none).
    """
    agents = tuple(incident.agents.order_by("slug").values_list("slug", flat=True))
    tool = action_hash = trace_id = ""
    flagged = incident.traces.exclude(flagged_span_id="").order_by("started_at", "id").first()
    if flagged is not None:
        step = Step.objects.filter(trace=flagged, span_id=flagged.flagged_span_id).first()
        if step is not None and step.action_hash:
            tool, action_hash, trace_id = step.tool_name, step.action_hash, flagged.trace_id
            if Trace.objects.filter(trace_id=flagged.trace_id).exclude(pk=flagged.pk).exists():
                trace_id = f"{flagged.trace_id}@{flagged.agent.slug}"  # other agents share the id: name this one
    return BlastSignature(tool=tool, action_hash=action_hash, trace=trace_id, agents=agents), trace_id
