"""The five access roles as groups with their permissions (see projects/access.py)."""

from django.db import migrations

CRUD = ("add", "change", "delete", "view")
FINANCE_MODELS = {
    "clients": ("client", "contact", "contract", "feemilestone"),
    "projects": ("role", "teammember", "tasktype", "project", "timeentry"),
    "billing": ("rate",),
    "approvals": ("approvalpolicy", "approvalrequest"),
}


def everything(actions):
    return [f"{app}.{action}_{model}" for app, models in FINANCE_MODELS.items() for model in models
            for action in actions]


ROLE_PERMISSIONS = {
    "staff": ["projects.log_time", "projects.view_project", "projects.view_tasktype"],
    "project_manager": [
        "projects.log_time", "projects.view_project", "projects.view_tasktype", "projects.view_timeentry",
        "approvals.decide_approvals", "approvals.view_approvalrequest", "approvals.change_approvalrequest",
    ],
    "approver": [
        "projects.log_time", "projects.view_all_time", "projects.view_project", "projects.view_tasktype",
        "projects.view_timeentry", "projects.view_teammember", "clients.view_client",
        "approvals.decide_approvals", "approvals.view_approvalrequest", "approvals.change_approvalrequest",
    ],
    "finance": [
        "projects.log_time", "projects.view_all_time", "projects.import_time", "projects.view_project_budgets",
        "projects.view_reports", "approvals.decide_approvals", *everything(CRUD),
    ],
    "management": [
        "projects.log_time", "projects.view_all_time", "projects.view_project_budgets", "projects.view_reports",
        *everything(("view",)),
    ],
}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = []
        for name in names:
            app_label, codename = name.split(".")
            permissions.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(permissions)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


def create_default_policy(apps, schema_editor):
    ApprovalPolicy = apps.get_model("approvals", "ApprovalPolicy")
    if not ApprovalPolicy.objects.filter(is_active=True).exists():
        ApprovalPolicy.objects.create(name="Firm default", is_active=True)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("clients", "0001_initial"),
        ("projects", "0001_initial"),
        ("approvals", "0001_initial"),
        ("billing", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_roles, remove_roles),
        migrations.RunPython(create_default_policy, migrations.RunPython.noop),
    ]
