"""Blast radius: which trajectories, users and running sessions share an incident's signature.

A *signature* is a conjunction of criteria. Step-level criteria (tool name, argument text or
regex, action hash) must hold on one and the same step and are checked with a correlated
``EXISTS`` over ``traces_step`` (served by the partial indexes on ``tool_name`` and
``action_hash``); trace-level criteria (agents, model/prompt version, input class) and the time
window (on ``Trace.started_at``) filter the trace row. Every count is one SQL aggregate.

Everything that comes out of traces (user ids, arguments) is untrusted: templates escape it,
and :func:`incidents.blast_radius.export.csv_safe` defuses spreadsheet formulas in the CSV export.
"""
