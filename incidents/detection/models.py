"""Hourly per-agent rollups of the steps the scheduled detectors read, so their cost stays flat as data grows.

A scheduled detector compares the last hour against a 7-day baseline. Read raw, the baseline is 7 days of
steps every cycle (14 s for 20 agents at 10M steps); read from these rows it is 168 rows per agent. Rows are
written only by ``incidents.detection.scheduled.rollup.rollups_ensure``; an hour is marked rolled (``RolledHour``)
once it is settled, and late spans of an hour already rolled are not counted (a spool drained after a long
outage can bring some: the baseline is a 7-day aggregate, the window is always read raw).
"""

from django.db import models

from agents.models import Agent


class DetectorRollup(models.Model):
    """One agent's counts in one hour, by the definitions the scheduled detectors use."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+", db_index=False)
    hour = models.DateTimeField()  # the hour's start (UTC, truncated)
    llm_outputs = models.PositiveIntegerField(default=0)
    llm_refusals = models.PositiveIntegerField(default=0)
    tool_calls = models.PositiveIntegerField(default=0)
    tool_errors = models.PositiveIntegerField(default=0)
    # tokens_out histogram of LLM outputs with tokens_out > 0: {"<bin>": count}, 25-token bins (ROLLUP_BIN)
    length_bins = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "hour"], name="detector_rollup_agent_hour")]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.hour:%Y-%m-%d %H}:00"


class RolledHour(models.Model):
    """An hour whose rollups are written for every agent (an agent with no row had no steps in it)."""

    hour = models.DateTimeField(unique=True)

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00"
