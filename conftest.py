import pytest
from django.core.cache import cache

from tests.factories import TeamMemberFactory, UserFactory


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cache.clear()


def _member_with_roles(roles, **kwargs):
    user = UserFactory(roles=roles)
    return TeamMemberFactory(user=user, email=user.email, **kwargs)


@pytest.fixture
def staff_member(db):
    return _member_with_roles(["staff"], name="Sam Staff")


@pytest.fixture
def other_staff_member(db):
    return _member_with_roles(["staff"], name="Olive Other")


@pytest.fixture
def project_manager(db):
    return _member_with_roles(["staff", "project_manager"], name="Priya Manager")


@pytest.fixture
def approver(db):
    return _member_with_roles(["staff", "approver"], name="Avery Approver")


@pytest.fixture
def finance(db):
    return _member_with_roles(["staff", "finance"], name="Fran Finance")


@pytest.fixture
def management(db):
    return _member_with_roles(["staff", "management"], name="Morgan Management")
