"""Canary prompts: a known input sent to an agent's canary webhook on a schedule.

The answer must meet the canary's expectation (contains / regex / JSON schema).
A run that fails, times out or gets a bad response is recorded and raised as an
alert (detector "canary", one alert per canary, deduplicated by fingerprint).

Webhook contract: POST ``{"canary": name, "input": input}`` as JSON; the agent
answers ``{"output": ...}`` (JSON) or a plain-text body, which is the output.
"""

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import jsonschema
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from agents.models import Agent
from core.actors import Actor
from evals.models import CanaryPrompt, CanaryRun
from incidents.alerts.services import alert_raise

log = logging.getLogger(__name__)

Expectation = CanaryPrompt.Expectation
Outcome = CanaryRun.Outcome

MAX_BODY_BYTES = 256 * 1024  # a canary answer larger than this is a bad response
MAX_TIMEOUT_SECONDS = 120.0
OUTPUT_KEEP_CHARS = 10_000  # what a run row stores of the output
ALERT_OUTPUT_CHARS = 500


class _BadResponse(Exception):
    """The webhook answered, but not with something a canary can judge (-> outcome error)."""


class _Timeout(Exception):
    pass


# --- validation -----------------------------------------------------------------------------------


def _schema_load(expected: str) -> dict[str, Any] | bool:
    try:
        schema = json.loads(expected)
    except ValueError as exc:
        raise ValidationError({"expected": f"The JSON schema is not valid JSON: {exc}"}) from exc
    if not isinstance(schema, dict | bool):
        raise ValidationError({"expected": "A JSON schema must be an object (or a boolean)."})
    try:
        # true and false are schemas too; the stubs type a schema as a mapping only.
        jsonschema.validators.validator_for(schema).check_schema(schema)  # type: ignore[arg-type]
    except jsonschema.SchemaError as exc:
        raise ValidationError({"expected": f"Not a valid JSON schema: {exc.message}"}) from exc
    return schema


def canary_validate(
    *,
    agent: Agent | None,
    name: str,
    expectation: str,
    expected: str,
    interval_minutes: int | None,
    timeout_seconds: float | None,
) -> None:
    """Raise ValidationError unless these fields make a canary that can run.

    Used by ``canary_create`` and by the admin form, so both refuse the same things.
    """
    errors: dict[str, str] = {}
    if not (name or "").strip():
        errors["name"] = "A canary needs a name."
    if agent is not None and not agent.canary_webhook_url:
        errors["agent"] = f"Agent {agent.slug} has no canary webhook URL; set one before adding canaries."
    if interval_minutes is None or int(interval_minutes) < 1:
        errors["interval_minutes"] = "The interval must be at least one minute."
    if timeout_seconds is None or not 0 < float(timeout_seconds) <= MAX_TIMEOUT_SECONDS:
        errors["timeout_seconds"] = f"The timeout must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds."
    if expectation not in Expectation.values:
        errors["expectation"] = f"Unknown expectation {expectation!r}."
    elif not expected:
        errors["expected"] = "Say what the answer must contain, match or conform to."
    elif expectation == Expectation.REGEX:
        try:
            re.compile(expected)
        except re.error as exc:
            errors["expected"] = f"The regex does not compile: {exc}"
    elif expectation == Expectation.JSON_SCHEMA:
        try:
            _schema_load(expected)
        except ValidationError as exc:
            errors.update({k: "; ".join(v) for k, v in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def canary_create(
    *,
    agent: Agent,
    name: str,
    input: str,
    expectation: str,
    expected: str,
    interval_minutes: int = 15,
    timeout_seconds: float = 10.0,
    actor: Actor,
) -> CanaryPrompt:
    """Create a canary for ``agent``; it is due at once. ValidationError (nothing written) when it could not run."""
    name = (name or "").strip()
    canary_validate(
        agent=agent, name=name, expectation=expectation, expected=expected,
        interval_minutes=interval_minutes, timeout_seconds=timeout_seconds,
    )  # fmt: skip
    if CanaryPrompt.objects.filter(agent=agent, name=name).exists():
        raise ValidationError({"name": f"Agent {agent.slug} already has a canary named {name!r}."})
    canary = CanaryPrompt(
        agent=agent, name=name, input=input, expectation=expectation, expected=expected,
        interval_minutes=interval_minutes, timeout_seconds=timeout_seconds,
    )  # fmt: skip
    canary.full_clean()
    canary.save()
    # ``actor`` is accepted for the service convention; canaries have no audit trail of their own
    # (AuditAction covers gate changes only).
    return canary


# --- running --------------------------------------------------------------------------------------


def _fetch(canary: CanaryPrompt) -> str:
    """POST the canary to the agent's webhook; return the output text. Raises _Timeout / _BadResponse."""
    url = canary.agent.canary_webhook_url
    if not url:
        raise _BadResponse("agent has no canary webhook URL")
    timeout = float(canary.timeout_seconds)
    deadline = time.monotonic() + timeout
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("POST", url, json={"canary": canary.name, "input": canary.input}) as response,
        ):
            if not response.is_success:
                raise _BadResponse(f"HTTP {response.status_code} from the canary webhook")
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > MAX_BODY_BYTES:
                    raise _BadResponse(f"response body larger than {MAX_BODY_BYTES} bytes")
                if time.monotonic() > deadline:  # httpx's timeout is per read; this bounds the whole answer
                    raise _Timeout(f"no complete answer within {timeout:g}s")
            content_type = response.headers.get("content-type", "")
            encoding = response.charset_encoding or "utf-8"
    except httpx.TimeoutException as exc:
        raise _Timeout(f"no answer within {timeout:g}s ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:  # connection refused, DNS, protocol errors, bad URL scheme...
        raise _BadResponse(f"request failed: {type(exc).__name__}: {exc}") from exc
    try:
        text = bytes(body).decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise _BadResponse(f"unreadable body: not {encoding} text") from exc
    return _output_from(text, is_json="json" in content_type.lower())


def _output_from(text: str, *, is_json: bool) -> str:
    """``{"output": ...}`` gives its output; any other body is the output itself."""
    try:
        data = json.loads(text)
    except ValueError:
        if is_json:
            raise _BadResponse("unreadable body: Content-Type says JSON but the body does not parse") from None
        return text
    if isinstance(data, dict) and "output" in data:
        output = data["output"]
        return output if isinstance(output, str) else json.dumps(output)
    return text


def _judge(canary: CanaryPrompt, output: str) -> tuple[Outcome, str]:
    """(outcome, detail) for an answer that arrived."""
    expected = canary.expected
    if canary.expectation == Expectation.CONTAINS:
        if expected in output:
            return Outcome.PASS, ""
        return Outcome.FAIL, f"output does not contain {expected!r}"
    if canary.expectation == Expectation.REGEX:
        try:
            matched = re.search(expected, output)
        except re.error as exc:  # saved around validation (e.g. a raw DB edit)
            return Outcome.ERROR, f"the canary's regex does not compile: {exc}"
        if matched:
            return Outcome.PASS, ""
        return Outcome.FAIL, f"output does not match /{expected}/"
    if canary.expectation == Expectation.JSON_SCHEMA:
        try:
            schema = _schema_load(expected)
        except ValidationError as exc:
            return Outcome.ERROR, f"the canary's schema is invalid: {'; '.join(exc.messages)}"
        try:
            document = json.loads(output)
        except ValueError:
            return Outcome.ERROR, "unreadable body: the output is not JSON, so the schema cannot be checked"
        validator = jsonschema.validators.validator_for(schema)(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(document))
        if error is None:
            return Outcome.PASS, ""
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return Outcome.FAIL, f"output does not conform to the schema at {where}: {error.message}"
    return Outcome.ERROR, f"unknown expectation {canary.expectation!r}"


def canary_run(*, canary: CanaryPrompt) -> CanaryRun:
    """Send the canary, judge the answer, record the run, schedule the next one.

    Anything but a pass raises (or counts again) the canary's alert. The HTTP call
    happens outside any transaction; the writes happen in one.
    """
    ran_at = timezone.now()
    started = time.monotonic()
    output = ""
    try:
        output = _fetch(canary)
    except _Timeout as exc:
        outcome, detail = Outcome.TIMEOUT, str(exc)
    except _BadResponse as exc:
        outcome, detail = Outcome.ERROR, str(exc)
    else:
        outcome, detail = _judge(canary, output)
    duration_ms = int((time.monotonic() - started) * 1000)
    output = output.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL

    with transaction.atomic():
        run = CanaryRun.objects.create(
            canary=canary, outcome=outcome, output=output[:OUTPUT_KEEP_CHARS], detail=detail,
            duration_ms=duration_ms, ran_at=ran_at,
        )  # fmt: skip
        canary.next_run_at = timezone.now() + timedelta(minutes=canary.interval_minutes)
        # update(), not save(): an admin edit made while the request was in flight must survive.
        CanaryPrompt.objects.filter(pk=canary.pk).update(next_run_at=canary.next_run_at)
        if outcome != Outcome.PASS:
            alert_raise(
                detector="canary",
                agent=canary.agent,
                fingerprint=f"canary:{canary.pk}",
                title=f"Canary {canary.name} failed: {detail}",
                suggested_severity="SEV2",
                failure_class_slug="output-quality",
                details={
                    "canary": canary.pk,
                    "name": canary.name,
                    "run": run.pk,
                    "outcome": outcome,
                    "detail": detail,
                    "expectation": canary.expectation,
                    "output": output[:ALERT_OUTPUT_CHARS],
                    "duration_ms": duration_ms,
                    "ran_at": ran_at.isoformat(),
                },
            )
    return run


# --- scheduling -----------------------------------------------------------------------------------


def _due_q(now: datetime) -> Q:
    # A stopped agent is not probed: its canary would only fail and page someone twice.
    return Q(enabled=True, agent__state="active") & (Q(next_run_at__isnull=True) | Q(next_run_at__lte=now))


def canaries_due(now: datetime | None = None) -> list[CanaryPrompt]:
    """Enabled canaries of active agents that have never run or whose next run is now or past."""
    now = now or timezone.now()
    return list(CanaryPrompt.objects.filter(_due_q(now)).select_related("agent").order_by("next_run_at", "pk"))


def _enqueue_all(enqueue: Callable[[int], object], ids: list[int]) -> None:
    for pk in ids:
        try:
            enqueue(pk)
        except Exception:  # one broker hiccup must not drop the rest; this canary waits one interval
            log.exception("could not queue canary %s", pk)


def canaries_run_due(*, enqueue: Callable[[int], object], now: datetime | None = None) -> list[int]:
    """Claim the due canaries and queue a run of each with ``enqueue(canary_id)``; return their ids.

    Claiming moves ``next_run_at`` one interval on before queueing, so the next beat
    does not queue the same canary again while its run waits or is in flight
    (``canary_run`` sets it again from when the run finished). Rows another beat holds
    are skipped. The runs are queued after the claim commits. The caller passes the
    enqueuer (the beat task passes ``canary_run_task.delay``), so this module never
    imports the tasks that import it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            CanaryPrompt.objects.filter(_due_q(now))
            .select_for_update(skip_locked=True)
            .order_by("next_run_at", "pk")
            .only("pk", "interval_minutes")
        )
        for canary in due:
            CanaryPrompt.objects.filter(pk=canary.pk).update(
                next_run_at=now + timedelta(minutes=canary.interval_minutes)
            )
        ids = [canary.pk for canary in due]
        transaction.on_commit(lambda: _enqueue_all(enqueue, ids))
    return ids


# --- selectors ------------------------------------------------------------------------------------


def canary_list(*, agent: Agent | None = None) -> QuerySet[CanaryPrompt]:
    """Canaries (optionally one agent's) with their last run: last_outcome, last_ran_at, last_detail, last_output."""
    last = CanaryRun.objects.filter(canary=OuterRef("pk")).order_by("-ran_at", "-id")
    qs = CanaryPrompt.objects.select_related("agent").annotate(
        last_outcome=Subquery(last.values("outcome")[:1]),
        last_ran_at=Subquery(last.values("ran_at")[:1]),
        last_detail=Subquery(last.values("detail")[:1]),
        last_output=Subquery(last.values("output")[:1]),
    )
    if agent is not None:
        qs = qs.filter(agent=agent)
    return qs.order_by("agent__slug", "name")
