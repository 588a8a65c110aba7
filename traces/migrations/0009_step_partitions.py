"""The steps table partitioned by day on the span's start time (issue 17, item 2).

PostgreSQL declarative partitioning: ``traces_step`` becomes a table partitioned by range on
``started_at``, one partition a day (UTC) and a default partition (``traces.retention.partitions``). The
unique keys carry the partition key: the primary key is (id, started_at) — Django still reads ``id`` as
the key, which the sequence keeps unique — and a span is stored once per (trace, span id, start).
Identity columns on partitioned tables need PostgreSQL 17, so ``id`` takes its values from a sequence
owned by the column, as ``serial`` does (the floor is 15).

The table is rebuilt: the rows are copied into the new table and its indexes are built after the copy
(the same index definitions, read from the catalogue). On a large table this takes a while and holds
the table; README says so. Days with data within the retention window get their own partition, and
older rows go to the default partition (the first retention run deletes them, keeping kept traces).
Reversible: backwards, the same rebuild makes a plain table again.
"""

from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db import migrations, models

FK = "traces_step_trace_id_ba5934e4_fk_traces_trace_id"


def _day_partition(cur, day) -> None:
    lo, hi = datetime.combine(day, time(), tzinfo=UTC), datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    cur.execute(
        f"CREATE TABLE traces_step_p{day:%Y%m%d} PARTITION OF traces_step "
        f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
    )


def _rebuild(schema_editor, *, partitioned: bool) -> None:
    with schema_editor.connection.cursor() as cur:
        cur.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'traces_step' "
            "AND indexname NOT IN ('traces_step_pkey', 'step_unique_span') ORDER BY indexname"
        )
        index_defs = [row[0] for row in cur.fetchall()]
        cur.execute("ALTER TABLE traces_step RENAME TO traces_step_old")
        cur.execute(
            "CREATE TABLE traces_step (LIKE traces_step_old)"
            + (" PARTITION BY RANGE (started_at)" if partitioned else "")
        )
        if partitioned:
            cur.execute("CREATE TABLE traces_step_default PARTITION OF traces_step DEFAULT")
            today = datetime.now(UTC).date()
            since = today - timedelta(days=max(settings.FIREBREAK_RETENTION_DAYS, 0) or 3650)
            cur.execute(
                "SELECT DISTINCT (started_at AT TIME ZONE 'UTC')::date FROM traces_step_old WHERE started_at >= %s",
                [datetime.combine(since, time(), tzinfo=UTC)],
            )
            days = {row[0] for row in cur.fetchall()} | {today + timedelta(days=n) for n in range(-1, 4)}
            for day in sorted(days):
                _day_partition(cur, day)
        cur.execute("INSERT INTO traces_step SELECT * FROM traces_step_old")
        cur.execute("SELECT coalesce(max(id), 0) FROM traces_step_old")
        last_id = cur.fetchone()[0]
        cur.execute("DROP TABLE traces_step_old")  # and its identity or owned sequence, indexes, constraints
        cur.execute("CREATE SEQUENCE traces_step_id_seq OWNED BY traces_step.id")
        if last_id:
            cur.execute("SELECT setval('traces_step_id_seq', %s)", [last_id])
        cur.execute("ALTER TABLE traces_step ALTER COLUMN id SET DEFAULT nextval('traces_step_id_seq')")
        key = ", started_at" if partitioned else ""
        cur.execute(f"ALTER TABLE traces_step ADD CONSTRAINT traces_step_pkey PRIMARY KEY (id{key})")
        cur.execute(f"ALTER TABLE traces_step ADD CONSTRAINT step_unique_span UNIQUE (trace_id, span_id{key})")
        cur.execute(
            f"ALTER TABLE traces_step ADD CONSTRAINT {FK} FOREIGN KEY (trace_id) REFERENCES traces_trace (id) "
            "DEFERRABLE INITIALLY DEFERRED"
        )
        for index_def in index_defs:
            cur.execute(index_def)
        cur.execute("ANALYZE traces_step")


def partition(apps, schema_editor) -> None:
    _rebuild(schema_editor, partitioned=True)


def unpartition(apps, schema_editor) -> None:
    _rebuild(schema_editor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [("traces", "0008_step_payload_cascade")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(partition, unpartition)],
            state_operations=[
                migrations.RemoveConstraint(model_name="step", name="step_unique_span"),
                migrations.AddConstraint(
                    model_name="step",
                    constraint=models.UniqueConstraint(
                        fields=("trace", "span_id", "started_at"), name="step_unique_span"
                    ),
                ),
            ],
        ),
    ]
