"""Project managers may read the approval history of the entries they decide."""

from django.db import migrations


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="approvals", codename="view_approvalevent")
    Group.objects.get(name="project_manager").permissions.add(permission)


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_invoicing_access")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
