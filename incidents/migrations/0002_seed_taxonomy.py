from django.db import migrations


def seed(apps, schema_editor):
    from incidents.taxonomy import taxonomy_seed

    taxonomy_seed(apps)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
