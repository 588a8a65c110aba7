"""The steps table by day, and old data gone by itself.

``traces_step`` is partitioned by range on the span's start time, one partition a day (UTC), plus a
default partition (``partitions``). Beat makes the next days' partitions ahead and runs retention every
hour (``traces.tasks``); ``python manage.py retention [--dry-run]`` runs it now. Retention drops whole
day partitions older than ``FIREBREAK_RETENTION_DAYS`` and never deletes steps row by row there; the
steps of kept traces (golden runs, and what the higher apps name through ``traces.hooks.retention_keepers``:
traces of an incident, of a post-mortem, of an eval case) are copied out to the default partition first.
"""
