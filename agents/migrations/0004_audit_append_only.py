"""The audit log is append-only in the database itself: no UPDATE of what a row says, no DELETE.

Only ``actor_id`` may change (to NULL, when the user it points at is deleted). Corrections are new
rows (a reason given later is an ``amends`` row). TRUNCATE, which tests use to empty tables, is not
a row change and stays possible for the database owner.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION firebreak_refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused (add a new entry instead)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER agents_auditentry_no_update
    BEFORE UPDATE OF agent_id, action, actor_label, reason, tool, incident_number, before, after, gate_version,
        amends_id, created_at
    ON agents_auditentry FOR EACH ROW EXECUTE FUNCTION firebreak_refuse_rewrite();
CREATE TRIGGER agents_auditentry_no_delete
    BEFORE DELETE ON agents_auditentry FOR EACH ROW EXECUTE FUNCTION firebreak_refuse_rewrite();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS agents_auditentry_no_update ON agents_auditentry;
DROP TRIGGER IF EXISTS agents_auditentry_no_delete ON agents_auditentry;
"""


class Migration(migrations.Migration):
    dependencies = [("agents", "0003_gate_epoch_and_amendments")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
