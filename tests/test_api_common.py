"""REST API conventions shared by every resource: auth, pagination, the schema, the resource names."""

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from projects.models import TaskType
from tests.factories import PASSWORD, TaskTypeFactory

pytestmark = pytest.mark.django_db

RESOURCES = ["roles", "members", "task-types", "clients", "contacts", "contracts", "rates", "projects",
             "time-entries", "approvals", "invoices", "billing-runs"]


def test_the_api_root_names_every_resource(finance):
    client = APIClient()
    client.force_authenticate(finance.user)
    assert set(RESOURCES) <= set(client.get("/api/v1/").json())


@pytest.mark.parametrize("resource", RESOURCES)
def test_anonymous_requests_get_401(resource):
    client = APIClient()
    assert client.get(f"/api/v1/{resource}/").status_code == 401
    assert client.post(f"/api/v1/{resource}/", {}, format="json").status_code == 401


def test_a_token_signs_requests_in_and_a_wrong_one_is_401(finance):
    token = Token.objects.create(user=finance.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/v1/clients/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/v1/clients/").status_code == 401


def test_the_browser_session_works_and_writes_need_csrf(finance):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username=finance.user.username, password=PASSWORD)
    assert client.get("/api/v1/task-types/").status_code == 200
    response = client.post("/api/v1/task-types/", {"code": "dev", "name": "Development"}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not TaskType.objects.exists()


def test_lists_are_paginated_50_by_default_and_at_most_500(staff_member):
    TaskType.objects.bulk_create(TaskType(code=f"task-{n:03d}", name=f"Task {n:03d}") for n in range(501))
    client = APIClient()
    client.force_authenticate(staff_member.user)

    default = client.get("/api/v1/task-types/").json()
    assert (default["count"], len(default["results"]), default["previous"]) == (501, 50, None)
    assert "page=2" in default["next"]

    capped = client.get("/api/v1/task-types/", {"page_size": 1000}).json()
    assert len(capped["results"]) == 500 and capped["next"]
    last = client.get("/api/v1/task-types/", {"page_size": 500, "page": 2}).json()
    assert [row["code"] for row in last["results"]] == ["task-500"] and last["next"] is None
    assert client.get("/api/v1/task-types/", {"page": 99}).status_code == 404


def test_the_schema_and_the_docs_are_served(staff_member):
    TaskTypeFactory()
    client = APIClient()
    client.force_authenticate(staff_member.user)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/time-entries/" in schema.content
    assert client.get("/api/docs/").status_code == 200


def test_the_schema_validates_without_warnings(tmp_path):
    # --fail-on-warn turns any drf-spectacular warning (an undescribed field, an enum clash) into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    text = (tmp_path / "schema.yaml").read_text()
    assert "TimeEntryWriteOneOrMany" in text
    for path in ("/api/v1/invoices/{id}/credit-notes/", "/api/v1/invoices/{id}/pdf/", "/api/v1/billing-runs/",
                 "/api/v1/approvals/{id}/approve/", "/api/v1/approvals/approve/"):
        assert f"{path}:" in text
