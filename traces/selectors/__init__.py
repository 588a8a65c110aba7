"""Reads for traces, one module per concept.

- ``runs``: whole runs (Trace rows): the filtered list in keyset pages, lookups, per-agent activity and spend.
- ``trajectory``: one run's steps for the viewer: the skeleton, windows of steps, search, one step's text.
- ``payloads``: a step's values kept apart from its row (over 64 KiB), read back whole.
- ``golden``: a run's golden trajectory and the tool-call diff against it.
- ``cursor``: the keyset position (start time, id) that pages of runs and windows of steps walk from.

What only the views show (timing bars, argument text) is in ``traces.presentation``, not here.
"""
