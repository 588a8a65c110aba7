from django.db import migrations


def create_groups(apps, schema_editor):
    from core.roles import roles_seed

    roles_seed(apps)


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
