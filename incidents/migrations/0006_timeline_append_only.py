"""The incident timeline is append-only in the database itself: corrections are new entries.

Only ``actor_id`` may change (to NULL, when the user it points at is deleted). Deleting an incident
would delete its timeline, so incidents cannot be deleted either.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION firebreak_refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused (add a new entry instead)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER incidents_timelineentry_no_update
    BEFORE UPDATE OF incident_id, kind, body, actor_label, data, created_at
    ON incidents_timelineentry FOR EACH ROW EXECUTE FUNCTION firebreak_refuse_rewrite();
CREATE TRIGGER incidents_timelineentry_no_delete
    BEFORE DELETE ON incidents_timelineentry FOR EACH ROW EXECUTE FUNCTION firebreak_refuse_rewrite();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS incidents_timelineentry_no_update ON incidents_timelineentry;
DROP TRIGGER IF EXISTS incidents_timelineentry_no_delete ON incidents_timelineentry;
"""


class Migration(migrations.Migration):
    dependencies = [("incidents", "0005_alert_handled_by")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
