"""The demo firm's logins, one per access role, printed by `demo` and `serve`."""

from django.contrib.auth import get_user_model

DEMO_PASSWORD = "billable-demo"
DEMO_USERS = [
    # (access role shown, username)
    ("staff", "sam.staff@demo.billable.test"),
    ("project_manager", "priya.pm@demo.billable.test"),
    ("approver", "avery.approver@demo.billable.test"),
    ("finance", "fran.finance@demo.billable.test"),
    ("management", "morgan.mgmt@demo.billable.test"),
    ("superuser", "admin@demo.billable.test"),
]


def demo_logins() -> list[tuple[str, str, str]]:
    """The demo logins that exist in this database."""
    existing = set(
        get_user_model().objects.filter(username__in=[u for _, u in DEMO_USERS]).values_list("username", flat=True)
    )
    return [(role, username, DEMO_PASSWORD) for role, username in DEMO_USERS if username in existing]
