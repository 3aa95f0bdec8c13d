"""Invoicing permissions for the access roles (see 0002_access_roles)."""

from django.db import migrations

FINANCE = [
    *[f"billing.{action}_{model}" for model in ("billingrun", "invoice", "invoiceline", "allocation",
                                                "contractcharge", "invoicesequence", "linedispute",
                                                "clientmessage", "invoiceevent")
      for action in ("add", "change", "delete", "view")],
    "billing.run_billing", "billing.finalize_invoice", "approvals.view_approvalevent",
    "projects.view_projectbudget", "projects.view_budgetalert",
]
MANAGEMENT = [name for name in FINANCE if ".view_" in name]
OTHERS = {
    "approver": ["approvals.view_approvalevent"],
    "project_manager": ["projects.view_projectbudget", "projects.view_budgetalert"],
}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, names in {"finance": FINANCE, "management": MANAGEMENT, **OTHERS}.items():
        group = Group.objects.get(name=role)
        for name in names:
            app_label, codename = name.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_invoicing"),
        ("billing", "0002_access_roles"),
        ("approvals", "0002_approval_events"),
        ("projects", "0003_project_budgets"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
