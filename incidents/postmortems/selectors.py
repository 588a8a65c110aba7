"""Reads for post-mortems: the post-mortem, its default template, attached traces as excerpts, the export."""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from django.db.models import Prefetch, QuerySet
from django.db.models.functions import Left, Length
from django.utils import timezone

from incidents import selectors
from incidents.blast_radius.selectors import blast_radius_last
from incidents.models import ActionItem, Incident, PostMortem, PostMortemTemplate, TimelineEntry
from traces.models import Step, Trace
from traces.presentation import steps_collapse
from traces.selectors import payloads
from traces.selectors.trajectory import Skeleton, step_skeleton, step_window_around

# Around a flagged step: 3 before it, the step, 2 after (step_window_around puts limit // 2 before).
EXCERPT_WINDOW = 6
TOOL_CALL_LIMIT = 200
TEXT_LIMIT = 2000
OUTPUT_LIMIT = 500


def postmortem_get(*, incident: Incident) -> PostMortem | None:
    """The incident's post-mortem with its attached traces and action items, or None."""
    return (
        PostMortem.objects.select_related("template", "author")
        .prefetch_related(
            Prefetch("attached_traces", queryset=Trace.objects.select_related("agent").order_by("started_at")),
            "action_items__owner",
        )
        .filter(incident=incident)
        .first()
    )


def postmortem_empty_sections(postmortem: PostMortem) -> list[str]:
    """Titles of the sections with nothing written in them."""
    return [s.get("title") or s.get("key", "?") for s in postmortem.sections if not (s.get("body") or "").strip()]


@dataclass(frozen=True)
class PublishNeeds:
    """What stands between a post-mortem and publishing, for the editor's banner."""

    empty_sections: list[str]
    unclassified: bool  # the incident has no failure class yet

    @property
    def ready(self) -> bool:
        return not self.empty_sections and not self.unclassified


def postmortem_publish_needs(*, postmortem: PostMortem) -> PublishNeeds:
    """The same conditions ``postmortem_status_set`` checks before publishing, as data."""
    return PublishNeeds(
        empty_sections=postmortem_empty_sections(postmortem),
        unclassified=postmortem.incident.failure_class_id is None,
    )


def postmortem_template_list() -> QuerySet[PostMortemTemplate]:
    return PostMortemTemplate.objects.all()


def postmortem_template_default(
    *, incident: Incident, templates: Iterable[PostMortemTemplate]
) -> PostMortemTemplate | None:
    """The first template whose ``default_for`` names the incident's severity, else the first one."""
    candidates = list(templates)
    for template in candidates:
        if incident.severity in (template.default_for or []):
            return template
    return candidates[0] if candidates else None


def postmortem_template_get(*, pk: str | int | None) -> PostMortemTemplate | None:
    """The template with primary key ``pk`` (as posted: a string), or None for a missing or bad key."""
    if pk is None:
        return None
    try:
        return PostMortemTemplate.objects.get(pk=int(pk))
    except (TypeError, ValueError, PostMortemTemplate.DoesNotExist):
        return None


def args_text(arguments: object) -> str:
    """Tool arguments as JSON text (one line when short), cut at TEXT_LIMIT characters."""
    if arguments is None:
        return ""
    compact = json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)
    text = compact if len(compact) <= 100 else json.dumps(arguments, indent=2, sort_keys=True, ensure_ascii=False)
    if len(text) > TEXT_LIMIT:
        text = f"{text[:TEXT_LIMIT]}\n… [{len(text) - TEXT_LIMIT:,} more characters not shown]"
    return text


@dataclass
class ExcerptStep:
    position: int
    span_id: str
    kind: str
    name: str
    tool_name: str
    args_text: str
    status: str
    output_head: str
    output_more: int
    output_apart: int  # bytes of the whole output when it is stored apart (output_more counts the preview only)
    error_message: str
    flagged: bool


@dataclass
class ToolCall:
    position: int
    span_id: str
    tool_name: str
    args_text: str
    status: str
    count: int = 1  # in ``tool_call_runs``: how many identical calls in a row this one stands for
    last_position: int = 0  # the position of the run's last call (its own position when count is 1)


def tool_calls_collapse(calls: list[ToolCall]) -> list[ToolCall]:
    """Consecutive identical calls (same tool, arguments and status) as one call with ``count``."""
    runs = steps_collapse(calls, key=lambda c: (c.tool_name, c.args_text, c.status))
    return [replace(run[0], count=len(run), last_position=run[-1].position) for run in runs]


@dataclass
class TraceExcerpt:
    """An attached trace as the post-mortem shows it: the steps around the flagged one
    (or the last five tool calls), and every tool call in order."""

    trace: Trace
    flagged: bool
    steps: list[ExcerptStep] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_calls_more: bool = False

    @property
    def tool_call_runs(self) -> list[ToolCall]:
        """The tool calls with each run of identical calls folded into one (the print view, the export)."""
        return tool_calls_collapse(self.tool_calls)


def tool_call_lines(excerpt: TraceExcerpt) -> list[str]:
    """The trace's tool calls in order, one line each, a run of identical calls as one line."""
    lines = []
    for call in excerpt.tool_call_runs:
        if call.count > 1:
            lines.append(
                f"#{call.position}–#{call.last_position} ×{call.count} identical calls to "
                f"{call.tool_name} {call.args_text} [{call.status}]"
            )
        else:
            lines.append(f"#{call.position} {call.tool_name} {call.args_text} [{call.status}]")
    if excerpt.tool_calls_more:
        lines.append(f"… more than {TOOL_CALL_LIMIT} tool calls; see the full trajectory")
    return lines


def tool_calls_draft(excerpts: list[TraceExcerpt]) -> str:
    """What the "Which tool calls…" section starts from: each attached trace's calls as a Markdown code block."""
    parts = []
    for excerpt in excerpts:
        if excerpt.tool_calls:
            trace = excerpt.trace
            parts.append(
                f"Trace `{trace.trace_id}` ({trace.agent.slug}):\n\n```\n"
                + "\n".join(tool_call_lines(excerpt))
                + "\n```"
            )
    return "\n\n".join(parts)


def _output_cut(step: Step) -> tuple[str, int]:
    """(the first characters, the full length) of the step's output, as its query annotated them."""
    # output_head / output_len are query annotations, not model fields: the stubs cannot see them.
    head: str | None = getattr(step, "output_head")  # noqa: B009
    length: int | None = getattr(step, "output_len")  # noqa: B009
    return head or "", length or 0


def _excerpt_steps(trace: Trace, skeleton: Skeleton) -> list[ExcerptStep]:
    rows: list[Step] = []
    if trace.flagged_span_id:
        window = step_window_around(trace=trace, span_id=trace.flagged_span_id, limit=EXCERPT_WINDOW)
        rows = window.steps if window else []
    if not rows:
        recent = list(skeleton.recent_tools)
        rows = list(
            Step.objects.filter(trace=trace, span_id__in=recent)
            .defer("input", "output", "attributes")
            .annotate(
                output_head=Left("output", OUTPUT_LIMIT),
                output_len=Length("output"),
                apart=payloads.step_apart_annotation(),
            )
            .order_by("started_at", "id")
        )
    steps: list[ExcerptStep] = []
    for step in rows:
        output_head, output_len = _output_cut(step)
        head = output_head[:OUTPUT_LIMIT]
        steps.append(
            ExcerptStep(
                position=skeleton.positions.get(step.span_id, 0),
                span_id=step.span_id,
                kind=step.kind,
                name=step.name,
                tool_name=step.tool_name,
                args_text=args_text(step.tool_arguments),
                status=step.status,
                output_head=head,
                output_more=max(0, output_len - len(head)),
                output_apart=payloads.apart_sizes(getattr(step, "apart", None)).get("output", 0),
                error_message=step.error_message[:TEXT_LIMIT],
                flagged=bool(trace.flagged_span_id) and step.span_id == trace.flagged_span_id,
            )
        )
    return steps


def trace_excerpt(*, trace: Trace) -> TraceExcerpt:
    """The excerpt of one trace (a few narrow queries; at most TOOL_CALL_LIMIT tool calls are listed)."""
    skeleton = step_skeleton(trace=trace)
    calls = list(
        Step.objects.filter(trace=trace)
        .exclude(tool_name="")
        .order_by("started_at", "id")
        .values_list("span_id", "tool_name", "tool_arguments", "status")[: TOOL_CALL_LIMIT + 1]
    )
    steps = _excerpt_steps(trace, skeleton)
    return TraceExcerpt(
        trace=trace,
        flagged=any(s.flagged for s in steps),
        steps=steps,
        tool_calls=[
            ToolCall(skeleton.positions.get(span_id, 0), span_id, tool, args_text(args), status)
            for span_id, tool, args, status in calls[:TOOL_CALL_LIMIT]
        ],
        tool_calls_more=len(calls) > TOOL_CALL_LIMIT,
    )


def postmortem_trace_excerpts(*, postmortem: PostMortem) -> list[TraceExcerpt]:
    traces = postmortem.attached_traces.select_related("agent").order_by("started_at", "id")
    return [trace_excerpt(trace=trace) for trace in traces]


def postmortem_timeline(*, incident: Incident) -> list[TimelineEntry]:
    return list(selectors.timeline_list(incident=incident))


PROMPT_ONLY_WARNING = "No structural change: every action is a prompt change."
NO_ACTION_WARNING = (
    "No structural change yet: add an eval case, a canary, a circuit breaker or budget setting, "
    "a version pin or a permission change."
)


def action_items_warning(items: list[ActionItem]) -> str:
    """The warning for a post-mortem without a structural action item ("" when it has one).

    Items marked "won't do" do not count: a structural change nobody will make prevents nothing.
    """
    live = [item for item in items if item.status != ActionItem.Status.WONT_DO]
    if any(item.is_structural for item in live):
        return ""
    return PROMPT_ONLY_WARNING if live else NO_ACTION_WARNING


# --- export ----------------------------------------------------------------------------------------


def _indent(text: str) -> str:
    # An indented code block: untrusted text can not close it the way it could close a ``` fence.
    return "\n".join("    " + line for line in (text or "").splitlines() or [""])


def _one_line(text: str) -> str:
    return " ".join(str(text or "").split())


def postmortem_markdown(*, incident: Incident, postmortem: PostMortem) -> str:
    """The whole post-mortem as one Markdown document: header, timeline, sections, traces, action items."""
    lines = [
        f"# Post-mortem {incident.ref}: {_one_line(incident.title)}",
        "",
        f"- Severity: {incident.severity}",
        f"- Failure class: {incident.failure_class.name if incident.failure_class else 'not yet classified'}",
        f"- Incident status: {incident.get_status_display()}",
        f"- Post-mortem status: {postmortem.get_status_display()}",
        f"- Declared: {incident.declared_at:%Y-%m-%d %H:%M} UTC",
    ]
    if postmortem.author:
        lines.append(f"- Author: {postmortem.author.get_username()}")
    if postmortem.due_at:
        lines.append(f"- Due: {postmortem.due_at:%Y-%m-%d %H:%M} UTC")
    if postmortem.published_at:
        lines.append(f"- Published: {postmortem.published_at:%Y-%m-%d %H:%M} UTC")
    lines += ["", "## Timeline", ""]
    timeline = postmortem_timeline(incident=incident)
    if timeline:
        for entry in timeline:
            when = timezone.localtime(entry.created_at).strftime("%Y-%m-%d %H:%M:%S")
            lines.append(f"- {when} [{entry.get_kind_display()}] {_one_line(entry.body)}")
    else:
        lines.append("No timeline entries.")
    blast = blast_radius_last(incident=incident)
    if blast:
        lines += ["", "## Blast radius (last measured)", ""]
        counts = (
            ("Trajectories", blast["trajectories"]),
            ("Distinct users", blast["users"]),
            ("Still running", blast["running"]),
        )
        for label, count in counts:
            lines.append(f"- {label}: {'—' if count is None else count}")
    for section in postmortem.sections:
        lines += ["", f"## {_one_line(section.get('title'))}", ""]
        body = (section.get("body") or "").strip()
        lines.append(body if body else "_Not written yet._")
    lines += ["", "## Attached traces", ""]
    excerpts = postmortem_trace_excerpts(postmortem=postmortem)
    if not excerpts:
        lines.append("No traces attached.")
    for excerpt in excerpts:
        trace = excerpt.trace
        lines += [f"### Trace {trace.trace_id} ({trace.agent.slug}, {trace.get_status_display()})", ""]
        if trace.flagged_span_id:
            lines += [f"Flagged step: span {trace.flagged_span_id} — {_one_line(trace.flag_note)}", ""]
        if excerpt.tool_calls:
            lines.append("Tool calls in order:")
            lines.append("")
            lines += [_indent(line) for line in tool_call_lines(excerpt)]
        else:
            lines.append("No tool calls.")
        lines.append("")
    lines += ["## Action items", ""]
    items = list(postmortem.action_items.select_related("owner"))
    if not items:
        lines.append("No action items.")
    for item in items:
        owner = item.owner.get_username() if item.owner else "unassigned"
        due = f", due {item.due_date:%Y-%m-%d}" if item.due_date else ""
        lines.append(
            f"- [{'x' if item.status == item.Status.DONE else ' '}] {_one_line(item.title)} "
            f"({item.get_kind_display()}; {owner}{due}; {item.get_status_display()})"
        )
    warning = action_items_warning(items)
    if warning:
        lines += ["", f"> Warning: {warning}"]
    return "\n".join(lines) + "\n"
