"""Payload rows go with their trace in the database too: retention and benchmarks delete traces with SQL.

Its own migration: Django adds the foreign keys of a new table at the end of the migration that creates it.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("traces", "0007_step_payload")]

    operations = [
        migrations.RunSQL(
            sql="""
                DO $$ DECLARE c text; BEGIN
                    SELECT conname INTO c FROM pg_constraint
                    WHERE conrelid = 'traces_steppayload'::regclass AND contype = 'f';
                    EXECUTE format('ALTER TABLE traces_steppayload DROP CONSTRAINT %I', c);
                END $$;
                ALTER TABLE traces_steppayload ADD CONSTRAINT traces_steppayload_trace_cascade
                    FOREIGN KEY (trace_id) REFERENCES traces_trace (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;
            """,
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
