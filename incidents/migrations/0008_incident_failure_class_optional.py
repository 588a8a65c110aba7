import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """An incident may be declared before triage knows its failure class ("not yet classified")."""

    dependencies = [
        ("incidents", "0007_detection_backlog"),
    ]

    operations = [
        migrations.AlterField(
            model_name="incident",
            name="failure_class",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="incidents",
                to="incidents.failureclass",
            ),
        ),
    ]
