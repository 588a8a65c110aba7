from django.db import migrations


def seed(apps, schema_editor):
    from incidents.taxonomy import FAILURE_CLASSES, POSTMORTEM_TEMPLATES

    FailureClass = apps.get_model("incidents", "FailureClass")
    PostMortemTemplate = apps.get_model("incidents", "PostMortemTemplate")
    for order, fc in enumerate(FAILURE_CLASSES):
        FailureClass.objects.update_or_create(slug=fc["slug"], defaults={**fc, "order": order})
    for order, tpl in enumerate(POSTMORTEM_TEMPLATES):
        PostMortemTemplate.objects.update_or_create(slug=tpl["slug"], defaults={**tpl, "order": order})


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
