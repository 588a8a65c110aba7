"""Writes for evals: capturing a case from a trace, recording the runs CI posts.

A forbidden action is ``{"tool": "<tool name>", "arguments_pattern": "<regex>", "max_calls": N}``
(``arguments_pattern`` and ``max_calls`` optional): the case fails when the agent makes more than
``max_calls`` (default 0) calls of ``tool`` with arguments whose canonical JSON (keys sorted, ``", "``
and ``": "`` separators, as ``json.dumps(args, sort_keys=True)``) matches the regular expression
(``re.search``); without a pattern, any arguments match. So a forbidden action describes the failure,
not the tool: a loop is "more than 1 identical ``lookup_order`` call", and a correct agent that looks
the order up once passes (``forbidden_actions_violations`` is the reference check).
"""

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from core import clock
from core.actors import Actor
from core.roles import RESPONDER
from evals.models import EvalCase, EvalRun, ForbiddenAction
from incidents.alerts.services import alert_raise
from incidents.models import FailureClass, Incident, Severity, TimelineKind
from incidents.services import timeline_record
from traces.models import Step, Trace
from traces.selectors.payloads import trace_root_input

TITLE_MAX = 300
TEXT_MAX = 100_000
FORBIDDEN_MAX = 50
MAX_CALLS_LIMIT = 10_000
PATTERN_MAX = 1000
SUGGEST_MAX = 5
# Argument values longer than this are left out of a suggested pattern: it should name the
# dangerous bit (an amount, a recipient), not restate a whole prompt.
SUGGEST_VALUE_MAX = 80
EVAL_DETECTOR = "eval_regression"


# --- forbidden actions ---------------------------------------------------------------------------


def forbidden_actions_clean(value: object) -> list[ForbiddenAction]:
    """``value`` as a clean list of ``{"tool", "arguments_pattern"?}``; raises ValidationError naming the item."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError as exc:
            raise ValidationError({"forbidden_actions": [f"Not valid JSON: {exc.msg} (line {exc.lineno})."]}) from None
    if not isinstance(value, list):
        raise ValidationError(
            {"forbidden_actions": ['A JSON list of objects: [{"tool": "…", "arguments_pattern": "…"}].']}
        )
    if len(value) > FORBIDDEN_MAX:
        raise ValidationError({"forbidden_actions": [f"At most {FORBIDDEN_MAX} forbidden actions."]})
    cleaned: list[ForbiddenAction] = []
    errors: list[str] = []
    for i, item in enumerate(value):
        where = f"item {i + 1}"
        if not isinstance(item, dict):
            errors.append(f'{where}: an object like {{"tool": "…"}}.')
            continue
        unknown = sorted(set(item) - {"tool", "arguments_pattern", "max_calls"})
        if unknown:
            errors.append(
                f"{where}: unknown key {', '.join(map(repr, unknown))} (only tool, arguments_pattern and max_calls)."
            )
            continue
        max_calls = item.get("max_calls")
        if max_calls is not None and (
            isinstance(max_calls, bool) or not isinstance(max_calls, int) or not 0 <= max_calls <= MAX_CALLS_LIMIT
        ):
            errors.append(f"{where}: max_calls must be a whole number from 0 to {MAX_CALLS_LIMIT:,}.")
            continue
        tool = item.get("tool")
        if not isinstance(tool, str) or not tool.strip():
            errors.append(f"{where}: tool is required (the tool's name).")
            continue
        entry: ForbiddenAction = {"tool": tool.strip()[:200]}
        pattern = item.get("arguments_pattern")
        if pattern not in (None, ""):
            if not isinstance(pattern, str):
                errors.append(f"{where}: arguments_pattern must be a string (a regular expression).")
                continue
            if len(pattern) > PATTERN_MAX:
                errors.append(f"{where}: arguments_pattern is longer than {PATTERN_MAX} characters.")
                continue
            try:
                re.compile(pattern)
            except re.error as exc:
                errors.append(f"{where}: arguments_pattern is not a valid regular expression ({exc}).")
                continue
            entry["arguments_pattern"] = pattern
        if max_calls:
            entry["max_calls"] = max_calls
        cleaned.append(entry)
    if errors:
        raise ValidationError({"forbidden_actions": errors})
    return cleaned


_REGEX_SPECIALS = re.compile(r"([.^$*+?{}\[\]\\|()])")


def _pattern_for(arguments: object) -> str:
    """A readable regex for the short scalar arguments of a call, in canonical (sorted) order."""
    if not isinstance(arguments, dict):
        return ""
    parts: list[str] = []
    for key in sorted(arguments):
        value = arguments[key]
        if isinstance(value, dict | list):
            continue
        text = json.dumps({key: value}, ensure_ascii=False)[1:-1]
        if len(text) <= SUGGEST_VALUE_MAX:
            parts.append(_REGEX_SPECIALS.sub(r"\\\1", text))
    return ".*".join(parts)


def forbidden_actions_suggest(*, trace: Trace) -> list[ForbiddenAction]:
    """What to prefill, describing the failure rather than the tool: a call the trace repeated (same tool
    and arguments twice or more) may happen once (``max_calls`` 1: more is the loop); the flagged step's
    call, when the trace made it once, not at all. The flagged call first, then the most repeated; at
    most SUGGEST_MAX, no duplicates."""
    calls = list(
        Step.objects.filter(trace=trace)
        .exclude(action_hash="")
        .exclude(tool_name="")
        .values_list("action_hash", "tool_name", "tool_arguments")[:5000]
    )
    counts = Counter(h for h, _, _ in calls)
    suggestions: list[ForbiddenAction] = []

    def add(tool: str, arguments: object, action: str) -> None:
        entry: ForbiddenAction = {"tool": tool}
        if pattern := _pattern_for(arguments):
            entry["arguments_pattern"] = pattern
        if counts[action] >= 2:
            entry["max_calls"] = 1
        if entry not in suggestions and len(suggestions) < SUGGEST_MAX:
            suggestions.append(entry)

    if trace.flagged_span_id:
        step = Step.objects.filter(trace=trace, span_id=trace.flagged_span_id).exclude(tool_name="").first()
        if step is not None:
            add(step.tool_name, step.tool_arguments, step.action_hash)
    seen: set[str] = set()
    for action, tool, arguments in sorted(calls, key=lambda c: -counts[c[0]]):
        if counts[action] >= 2 and action not in seen:
            seen.add(action)
            add(tool, arguments, action)
    return suggestions


def forbidden_actions_violations(actions: list[ForbiddenAction], calls: Iterable[tuple[str, object]]) -> list[str]:
    """The reference check of a run against a case's forbidden actions: ``calls`` are the run's tool calls
    as (tool, arguments); returns one sentence per forbidden action the run broke (empty: it passed)."""
    made = list(calls)
    broken: list[str] = []
    for action in actions:
        pattern = action.get("arguments_pattern")
        matching = sum(
            1
            for tool, arguments in made
            if tool == action["tool"] and (not pattern or re.search(pattern, json.dumps(arguments, sort_keys=True)))
        )
        allowed = action.get("max_calls", 0)
        if matching > allowed:
            what = f"{action['tool']}" + (f" matching /{pattern}/" if pattern else "")
            broken.append(f"{matching} call{'s' if matching != 1 else ''} of {what}; at most {allowed} allowed")
    return broken


# --- capture -------------------------------------------------------------------------------------


def eval_case_default_title(*, trace: Trace, incident: Incident | None) -> str:
    if incident is not None:
        return incident.title[:TITLE_MAX]
    if trace.flag_note:
        return trace.flag_note[:TITLE_MAX]
    return f"{trace.agent.slug}: {trace.input_class or 'run'} {trace.trace_id[:12]}"[:TITLE_MAX]


def _resolve_failure_class(value: FailureClass | str | None, incident: Incident | None) -> FailureClass | None:
    if value is None:
        return incident.failure_class if incident is not None else None
    if isinstance(value, FailureClass):
        return value
    if value == "":
        return None
    found = FailureClass.objects.filter(slug=value).first()
    if found is None:
        raise ValidationError({"failure_class": [f"No failure class {value!r}."]})
    return found


def _resolve_severity(value: str | None, incident: Incident | None) -> str:
    if value is None:
        return incident.severity if incident is not None else ""
    if value and value not in Severity.values:
        raise ValidationError({"severity": [f"One of {', '.join(Severity.values)}, or empty."]})
    return value


@transaction.atomic
def eval_case_capture(
    *,
    trace: Trace,
    incident: Incident | None = None,
    expected_behaviour: str,
    forbidden_actions: str | list[Any] | None = None,
    title: str = "",
    actor: Actor,
    input_text: str | None = None,
    failure_class: FailureClass | str | None = None,
    severity: str | None = None,
) -> EvalCase:
    """Capture ``trace`` as a regression case of its agent (responder only), in one transaction.

    Defaults: title from the incident (else the flag note, else the trace); input the trace's root
    input; forbidden actions (JSON text or a list) suggested from the trace (``forbidden_actions_suggest``) when None;
    failure class and severity from the incident when None. The flagged step (if any) is recorded.
    With an incident, an "eval" entry goes on its timeline. Raises PermissionDenied or
    ValidationError (a dict naming the field); nothing is written when it raises.
    """
    actor.require(RESPONDER)
    errors: dict[str, list[str]] = {}
    expected = (expected_behaviour or "").strip()
    if not expected:
        errors["expected_behaviour"] = ["Say what the agent should have done instead."]
    elif len(expected) > TEXT_MAX:
        errors["expected_behaviour"] = [f"At most {TEXT_MAX:,} characters."]
    text = (trace_root_input(trace=trace) if input_text is None else input_text).strip()
    if not text:
        errors["input"] = ["The case needs the input that went wrong (this trace has no root input)."]
    elif len(text) > TEXT_MAX:
        errors["input"] = [f"At most {TEXT_MAX:,} characters."]
    title = " ".join((title or "").split()) or eval_case_default_title(trace=trace, incident=incident)
    if len(title) > TITLE_MAX:
        errors["title"] = [f"At most {TITLE_MAX} characters."]
    actions: list[ForbiddenAction] = []
    fc: FailureClass | None = None
    sev = ""
    try:
        if forbidden_actions is None:
            actions = forbidden_actions_suggest(trace=trace)
        else:
            actions = forbidden_actions_clean(forbidden_actions)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        fc = _resolve_failure_class(failure_class, incident)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        sev = _resolve_severity(severity, incident)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    case = EvalCase.objects.create(
        agent=trace.agent,
        incident=incident,
        trace=trace,
        flagged_span_id=trace.flagged_span_id,
        title=title,
        input=text,
        expected_behaviour=expected,
        forbidden_actions=actions,
        failure_class=fc,
        severity=sev,
        created_by=actor.user,
    )
    if incident is not None:
        timeline_record(
            incident=incident,
            kind=TimelineKind.EVAL,
            body=f"Eval case EC-{case.pk} captured from trace `{trace.trace_id}`: {title}",
            actor=actor,
            data={
                "case": case.pk,
                "trace": trace.trace_id,
                "agent": trace.agent.slug,
                "span_id": trace.flagged_span_id,
            },
        )
    return case


# --- runs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    """One validated result of a batch; ``case`` already resolved."""

    case: EvalCase
    passed: bool
    output: str = ""
    version: str = ""
    ran_at: datetime | None = None
    details: dict[str, Any] | None = None


def _latest(case_ids: Iterable[int]) -> dict[int, EvalRun]:
    latest: dict[int, EvalRun] = {}
    for run in EvalRun.objects.filter(case_id__in=case_ids).order_by("case_id", "-ran_at", "-id").distinct("case_id"):
        latest[run.case_id] = run
    return latest


@transaction.atomic
def eval_runs_record(*, results: list[RunResult], source: str = "", actor: Actor) -> list[EvalRun]:
    """Record a batch of results in one transaction (responder only; never an agent key).

    A case whose latest run passed before the batch and failed after it went red: an alert is
    raised (detector ``eval_regression``, fingerprint ``eval:<case id>``, so a case that stays red
    adds nothing and one that flips again counts on the same alert). Returns the runs written.
    """
    actor.require(RESPONDER)
    now = clock.now()
    case_ids = sorted({r.case.pk for r in results})
    # Lock the cases so two batches for one case see each other's runs when they decide on a flip.
    list(EvalCase.objects.select_for_update().filter(pk__in=case_ids).order_by("pk").values_list("pk", flat=True))
    before = _latest(case_ids)
    runs = EvalRun.objects.bulk_create(
        [
            EvalRun(
                case=r.case,
                passed=r.passed,
                output=r.output,
                version=r.version[:200],
                source=(source or "")[:200],
                details=r.details or {},
                ran_at=r.ran_at or now,
            )
            for r in results
        ]
    )
    after = _latest(case_ids)
    cases = {r.case.pk: r.case for r in results}
    for pk in case_ids:
        prev, last = before.get(pk), after[pk]
        if prev is not None and prev.passed and not last.passed:
            _alert_red(cases[pk], last, previous=prev)
    return runs


def _alert_red(case: EvalCase, run: EvalRun, *, previous: EvalRun) -> None:
    alert_raise(
        detector=EVAL_DETECTOR,
        agent=case.agent,
        fingerprint=f"eval:{case.pk}",
        title=f"Eval EC-{case.pk} went red: {case.title}",
        trace=case.trace,
        span_id=case.flagged_span_id,
        suggested_severity=case.severity or Severity.SEV2,
        failure_class_slug=fc.slug if (fc := case.failure_class) else "",
        details={
            "case": f"EC-{case.pk}",
            "case_id": case.pk,
            "incident": incident.number if (incident := case.incident) else None,
            "version": run.version,
            "source": run.source,
            "ran_at": run.ran_at.isoformat(),
            "output": run.output[:2000],
            "last_green_version": previous.version,
            "last_green_at": previous.ran_at.isoformat(),
        },
    )
