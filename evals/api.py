"""The evals API: export the cases to an agent team's own runner, record the results CI posts.

Who may call it: people only (a session, or a person's key with the ``api`` scope). Reading the
cases needs the viewer role, posting runs the responder role. Agent keys are refused (403): the
runner is CI, which holds a person's (or a bot user's) key, never the agent under test.
"""

import json
import re
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import Agent
from agents.permissions import IsResponder, IsViewer
from core.actors import Actor
from core.api import ERROR, error
from core.errors import error_detail
from evals import selectors, services
from evals.models import EvalCase
from incidents.models import Incident

BATCH_MAX = 1000
OUTPUT_MAX = 100_000
CASE_REF = re.compile(r"^(?:EC-)?([1-9][0-9]{0,9})$", re.IGNORECASE)


class JSONLinesRenderer(BaseRenderer):
    """JSON Lines: one compact JSON object per line (a list becomes one line per item)."""

    media_type = "application/x-ndjson"
    format = "jsonl"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        items = data if isinstance(data, list) else [data]
        return "".join(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n" for item in items).encode()


# --- serializers ---------------------------------------------------------------------------------


class ForbiddenActionSerializer(serializers.Serializer):
    tool = serializers.CharField()
    arguments_pattern = serializers.CharField(
        required=False,
        help_text="regular expression searched (re.search) in the call's arguments as "
        "json.dumps(arguments, sort_keys=True); absent: any arguments match",
    )
    max_calls = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="how many matching calls are still fine (absent: 0); the case fails on more, so a loop "
        "is described as more than N identical calls, not as the tool",
    )


class CaseSerializer(serializers.Serializer):
    """Documentation of the export format; the documents themselves come from selectors.eval_case_document."""

    id = serializers.CharField(help_text='"EC-<case_id>", what a run refers to')
    case_id = serializers.IntegerField()
    agent = serializers.CharField(help_text="the agent's slug")
    title = serializers.CharField()
    input = serializers.CharField(help_text="the input to send the agent (the captured trace's root input)")
    expected_behaviour = serializers.CharField()
    forbidden_actions = ForbiddenActionSerializer(many=True)
    failure_class = serializers.CharField(allow_null=True, help_text="failure class slug")
    severity = serializers.ChoiceField(["SEV1", "SEV2", "SEV3"], allow_null=True)
    incident = serializers.IntegerField(allow_null=True, help_text="number of the source incident")
    trace_id = serializers.CharField(allow_null=True, help_text="the trace the case was captured from")
    created_at = serializers.DateTimeField()


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false only: a CI job that sends "yes" or 1 has a bug worth hearing about."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        self.fail("invalid")


@extend_schema_field({"oneOf": [{"type": "string", "example": "EC-12"}, {"type": "integer", "example": 12}]})
class CaseRefField(serializers.Field):
    default_error_messages = {"invalid": 'A case id: "EC-12" or 12.'}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        match = CASE_REF.match(str(data).strip())
        if not match:
            self.fail("invalid")
        return int(match.group(1))

    def to_representation(self, value):
        return f"EC-{value}"


class ResultSerializer(serializers.Serializer):
    case = CaseRefField(help_text='"EC-12" or 12')
    passed = StrictBooleanField()
    output = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=OUTPUT_MAX, trim_whitespace=False
    )
    version = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200, help_text="e.g. refund-agent@v10 / gpt-4.1"
    )
    ran_at = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="ISO 8601; default now")
    details = serializers.DictField(required=False, default=dict)


class RunBatchSerializer(serializers.Serializer):
    # many=True hands max_length to the ListSerializer (the stubs do not know it); a declared field
    # named ``source`` is the body's field, not Field.source (the metaclass collects it).
    results = ResultSerializer(many=True, allow_empty=False, max_length=BATCH_MAX)  # type: ignore[call-arg]
    source = serializers.CharField(  # type: ignore[assignment]
        required=False, allow_blank=True, default="", max_length=200, help_text="the CI job, e.g. github-actions #123"
    )


def _flatten(errors, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as {"results[1].passed": ["This field is required."]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            if key == "non_field_errors" and prefix:
                name = prefix
            elif isinstance(key, int) or str(key).isdigit():  # a list's errors, keyed by index
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(_flatten(value, name))
    elif isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
        flat[prefix or "non_field_errors"] = [str(e) for e in errors]
    elif isinstance(errors, list):
        for i, value in enumerate(errors):
            if value:
                flat.update(_flatten(value, f"{prefix}[{i}]"))
    else:
        flat[prefix or "non_field_errors"] = [str(errors)]
    return flat


def _summary(flat: dict[str, list[str]]) -> str:
    return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in list(flat.items())[:10])


# --- views ---------------------------------------------------------------------------------------


class EvalCaseListApi(APIView):
    permission_classes = [IsViewer]
    renderer_classes = [JSONRenderer, JSONLinesRenderer]

    @extend_schema(
        operation_id="evals_cases_list",
        summary="Export the eval cases (JSON or JSON Lines)",
        description=(
            "Every eval case, oldest first (a stable order), for an agent team's own runner. "
            "JSON (a list) by default; JSON Lines (one object per line, `application/x-ndjson`) with "
            "`?format=jsonl` or `Accept: application/x-ndjson`. Each object has exactly the keys "
            "`id` (`EC-<n>`), `case_id`, `agent`, `title`, `input`, `expected_behaviour`, `forbidden_actions` "
            '(`[{"tool", "arguments_pattern"?}]`: the pattern is a regex searched in the call\'s arguments '
            "serialised as `json.dumps(arguments, sort_keys=True)`), `failure_class` (slug or null), "
            "`severity` (or null), `incident` (number or null), `trace_id` (or null), `created_at`. "
            "New keys may be added; none is removed or renamed. People only (viewer role or a person's key "
            "with the `api` scope); agent keys get 403."
        ),
        parameters=[
            OpenApiParameter("agent", OpenApiTypes.STR, description="only this agent's cases (slug)"),
            OpenApiParameter("incident", OpenApiTypes.INT, description="only the cases captured from this incident"),
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "jsonl"], description="default json"),
        ],
        responses={
            200: CaseSerializer(many=True),
            403: OpenApiResponse(ERROR, description="an agent key, or not a viewer"),
            404: OpenApiResponse(ERROR, description="unknown agent or incident"),
        },
        tags=["evals"],
    )
    def get(self, request):
        agent = incident = None
        if slug := request.query_params.get("agent", "").strip():
            agent = Agent.objects.filter(slug=slug).first()
            if agent is None:
                return error(f"unknown agent {slug[:100]!r}", 404)
        if number := request.query_params.get("incident", "").strip():
            incident = Incident.objects.filter(number=int(number)).first() if number.isdigit() else None
            if incident is None:
                return error(f"unknown incident {number[:20]!r}", 404)
        return Response(selectors.eval_case_export(agent=agent, incident=incident))


class EvalRunsApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="evals_runs_record",
        summary="Record eval results from CI",
        description=(
            "A batch of results, validated as a whole before anything is written: a bad payload is a 400 whose "
            '`detail` names each field (`{"results[1].passed": ["This field is required."]}`), an unknown case a '
            "404 naming it; either way nothing is written. A case whose latest run passed and now fails raises "
            "an `eval_regression` alert (once: a case that stays red adds nothing). Responder role or a person's "
            "key with the `api` scope; agent keys get 403."
        ),
        request=RunBatchSerializer,
        responses={
            201: inline_serializer(
                "EvalRunsRecorded",
                {
                    "recorded": serializers.IntegerField(),
                    "runs": inline_serializer(
                        "EvalRunRecorded",
                        {
                            "case": serializers.CharField(),
                            "passed": serializers.BooleanField(),
                            "ran_at": serializers.DateTimeField(),
                        },
                        many=True,
                    ),
                },
            ),
            400: OpenApiResponse(ERROR, description="invalid batch; nothing written"),
            403: OpenApiResponse(ERROR, description="an agent key, or not a responder; nothing written"),
            404: OpenApiResponse(ERROR, description="an unknown case; nothing written"),
        },
        tags=["evals"],
    )
    def post(self, request):
        batch = RunBatchSerializer(data=request.data)
        if not batch.is_valid():
            flat = _flatten(batch.errors)
            return error(_summary(flat), 400, flat)
        data = batch.validated_data
        wanted = {r["case"] for r in data["results"]}
        cases = EvalCase.objects.select_related("agent", "trace", "incident", "failure_class").in_bulk(wanted)
        missing = {
            f"results[{i}].case": [f"unknown eval case EC-{r['case']}"]
            for i, r in enumerate(data["results"])
            if r["case"] not in cases
        }
        if missing:
            return error(_summary(missing), 404, missing)
        results = [
            services.RunResult(
                case=cases[r["case"]],
                passed=r["passed"],
                output=r["output"],
                version=r["version"],
                ran_at=r["ran_at"],
                details=r["details"],
            )
            for r in data["results"]
        ]
        try:
            runs = services.eval_runs_record(results=results, source=data["source"], actor=Actor.from_request(request))
        except PermissionDenied as exc:
            return error(str(exc) or "not allowed", 403)
        except ValidationError as exc:
            return error("invalid input", 400, error_detail(exc))
        return Response(
            {
                "recorded": len(runs),
                "runs": [
                    {"case": f"EC-{run.case_id}", "passed": run.passed, "ran_at": _iso(run.ran_at)} for run in runs
                ],
            },
            status=201,
        )


def _iso(value: datetime) -> str:
    return serializers.DateTimeField().to_representation(value)
