"""The words of the demo history: timeline notes and post-mortem sections from a Story and its facts."""

from dataclasses import dataclass
from datetime import datetime

from demo.fleet.history_stories import Story


def plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def duration(minutes: float) -> str:
    """Minutes as a person says them: "4 minutes", "1 hour", "3 hours 20 minutes", "2 days"."""
    m = max(1, round(minutes))
    if m < 60:
        return plural(m, "minute", "minutes")
    hours, rest = divmod(m, 60)
    if hours >= 48:
        return plural(round(hours / 24), "day", "days")
    text = plural(hours, "hour", "hours")
    return text + (f" {plural(rest, 'minute', 'minutes')}" if rest and hours < 10 else "")


@dataclass(frozen=True)
class Facts:
    """What one past incident's text refers to."""

    agent: str
    version: str
    fixed: str
    model: str
    runs: int
    users: int
    declared: datetime
    contained: datetime | None
    resolved: datetime | None
    case_ref: str  # "EC-12"
    tool_calls: list[tuple[str, int]]  # the primary trace's tool calls, runs of one tool folded

    def fields(self) -> dict[str, str]:
        minutes = (self.contained - self.declared).total_seconds() / 60 if self.contained else 0
        return {
            "agent": f"`{self.agent}`",
            "version": self.version,
            "fixed": self.fixed,
            "model": self.model,
            "runs": plural(self.runs, "trajectory", "trajectories"),
            "users": plural(self.users, "user", "users"),
            "minutes": duration(minutes),
        }


def fill(text: str, facts: Facts) -> str:
    return text.format(**facts.fields())


def _actions(story: Story, facts: Facts) -> str:
    lines = [f"- {title}" for _, title in story.actions]
    return "Action items:\n\n" + "\n".join(lines) + f"\n\nThe regression case is {facts.case_ref}."


def _tool_calls(facts: Facts) -> str:
    if not facts.tool_calls:
        return "No tool calls: the run was model calls only."
    lines = [
        f"{i}. `{tool}`" + (f" × {count}" if count > 1 else "") for i, (tool, count) in enumerate(facts.tool_calls, 1)
    ]
    return "From the attached trajectory, in order:\n\n" + "\n".join(lines)


def _hhmm(moment: datetime | None) -> str:
    return f"{moment:%b %-d, %H:%M} UTC" if moment else "not yet"


def _timeline(facts: Facts) -> str:
    lines = [f"- {_hhmm(facts.declared)} declared"]
    if facts.contained:
        took = duration((facts.contained - facts.declared).total_seconds() / 60)
        lines.append(f"- {_hhmm(facts.contained)} contained, {took} later")
    if facts.resolved:
        lines.append(f"- {_hhmm(facts.resolved)} resolved after the fix was verified ({facts.fixed})")
    return "\n".join(lines) + "\n\nTimes are from the incident timeline; the attached trajectories show each step."


def _went_well(story: Story, facts: Facts) -> str:
    if story.contain == "none":
        return "The runbook held: the cause was found from the attached trajectory without stopping the agent."
    what = {"pause": "Pausing", "kill": "Killing", "freeze": "Freezing the budget and pausing"}.get(
        story.contain, "Disabling the tool"
    )
    return f"{what} {facts.agent} took one click and held; the trajectory showed the off-rails step at once."


def sections(template: str, story: Story, facts: Facts) -> dict[str, str]:
    """Section bodies by key for the post-mortem template ``template`` (its slug)."""
    what, why = fill(story.what, facts), fill(story.why, facts)
    blast, fix = fill(story.blast, facts), fill(story.fix, facts)
    if template == "sev1-agent":
        return {
            "what": what,
            "why": why,
            "guardrails": fill(story.guardrails, facts),
            "blast_radius": f"{blast}\n\n{fix}",
            "prevention": _actions(story, facts),
        }
    if template == "ai-questions":
        return {
            "what_changed": fill(story.changed, facts),
            "retrieval": fill(story.retrieval, facts),
            "budget": fill(story.budget, facts),
            "tool_calls": _tool_calls(facts),
            "evals": f"No: no case covered this input. {facts.case_ref} now does, and runs on every change.",
            "prevention": f"{fix}\n\n{_actions(story, facts)}",
        }
    return {
        "summary": f"{what} {fix}",
        "impact": blast,
        "timeline": _timeline(facts),
        "trigger": fill(story.changed, facts),
        "systemic_gap": f"{why} {fill(story.guardrails, facts)}",
        "went_well": _went_well(story, facts),
        "went_badly": fill(story.went_badly, facts),
    }


def note_assess(story: Story, facts: Facts) -> str:
    return f"Assessment: {fill(story.blast, facts)}"


def note_cause(story: Story, facts: Facts) -> str:
    return f"Cause: {fill(story.why, facts)}"


def note_fix(story: Story, facts: Facts) -> str:
    return f"Fix deployed and verified on the regression case: {fill(story.fix, facts)}"
