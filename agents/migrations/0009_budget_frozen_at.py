"""Budget freeze no longer lowers the per-session cost cap (issue 15): record when each freeze began,
and give back the cap an earlier freeze lowered to the p50 session spend.

The old freeze's audit row recorded the cap before and after (``state_snapshot``). Where the agent's
cap is still the lowered value and no caps or settings change came after that freeze, the cap goes
back to the recorded value: one audit row per agent, a new gate version (the reconciler publishes it).
"""

from decimal import Decimal

from django.db import migrations, models

CAP_CHANGES = ("budget_caps", "settings")
LABEL = "migration: budget freeze no longer lowers caps"


def _decimal(value):
    return Decimal(value) if value is not None else None


def restore_caps(apps, schema_editor):
    Agent = apps.get_model("agents", "Agent")
    AuditEntry = apps.get_model("agents", "AuditEntry")
    for agent in Agent.objects.all():
        freeze = AuditEntry.objects.filter(agent=agent, action="budget_freeze").order_by("-created_at", "-id").first()
        if freeze is None:
            continue
        if agent.budget_frozen and agent.budget_frozen_at is None:
            agent.budget_frozen_at = freeze.created_at
            agent.save(update_fields=["budget_frozen_at"])
        if "session_cost_cap" not in freeze.before or "session_cost_cap" not in freeze.after:
            continue
        before, after = _decimal(freeze.before["session_cost_cap"]), _decimal(freeze.after["session_cost_cap"])
        if before == after or agent.session_cost_cap != after:
            continue
        later = AuditEntry.objects.filter(agent=agent, action__in=CAP_CHANGES, created_at__gte=freeze.created_at)
        if later.exclude(pk=freeze.pk).exists():
            continue  # someone set the caps since: theirs stand
        agent.session_cost_cap = before
        agent.gate_version += 1
        agent.save(update_fields=["session_cost_cap", "gate_version"])
        AuditEntry.objects.create(
            agent=agent,
            action="budget_caps",
            actor_label=LABEL,
            reason=f"the budget freeze of {freeze.created_at:%Y-%m-%d %H:%M} UTC lowered the per-session cap "
            f"from {before} to {after}; a freeze no longer changes caps, so it is back to {before}",
            before={"session_cost_cap": str(after) if after is not None else None},
            after={"session_cost_cap": str(before) if before is not None else None},
            gate_version=agent.gate_version,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0008_inbound_integration_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="agent",
            name="budget_frozen_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(restore_caps, migrations.RunPython.noop),
    ]
