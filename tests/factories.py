"""factory-boy factories for the whole domain, kept consistent through SubFactories."""

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from djmoney.money import Money

from approvals.models import ApprovalPolicy
from billing.models import Rate
from clients.models import BillingType, Client, Contact, Contract
from projects.access import grant_access_roles
from projects.models import EntrySource, Project, Role, TaskType, TeamMember, TimeEntry

PASSWORD = "billable-test-pass"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@firm.test")
    email = factory.LazyAttribute(lambda o: o.username)
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        self.save()
        if create and extracted:
            grant_access_roles(self, extracted)


class RoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Role
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"role-{n}")
    name = factory.LazyAttribute(lambda o: o.code.replace("-", " ").title())
    default_cost_rate = Money("60.00", "USD")


class TeamMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TeamMember

    user = factory.SubFactory(UserFactory, roles=["staff"])
    email = factory.LazyAttribute(lambda o: o.user.email)
    name = factory.Sequence(lambda n: f"Member {n}")
    role = factory.SubFactory(RoleFactory)
    weekly_capacity_hours = Decimal("40.00")


class TaskTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaskType
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"task-{n}")
    name = factory.LazyAttribute(lambda o: o.code.replace("-", " ").title())
    billable = True


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"client-{n}")
    name = factory.Sequence(lambda n: f"Client {n}")
    currency = "USD"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    client = factory.SubFactory(ClientFactory)
    name = factory.Sequence(lambda n: f"Contact {n}")
    email = factory.Sequence(lambda n: f"contact{n}@client.test")


class ContractFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contract

    client = factory.SubFactory(ClientFactory)
    number = factory.Sequence(lambda n: f"C-{100 + n}")
    billing_type = BillingType.TIME_AND_MATERIALS
    currency = factory.LazyAttribute(lambda o: o.client.currency)
    start_date = dt.date(2026, 1, 1)


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    contract = factory.SubFactory(ContractFactory)
    client = factory.LazyAttribute(lambda o: o.contract.client)
    code = factory.Sequence(lambda n: f"prj-{n}")
    name = factory.Sequence(lambda n: f"Project {n}")
    start_date = dt.date(2026, 1, 1)


class RateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rate

    contract = factory.SubFactory(ContractFactory)
    hourly_rate = factory.LazyAttribute(lambda o: Money("150.00", o.contract.currency))
    effective_from = dt.date(2026, 1, 1)


class TimeEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TimeEntry

    member = factory.SubFactory(TeamMemberFactory)
    project = factory.SubFactory(ProjectFactory)
    task_type = factory.SubFactory(TaskTypeFactory)
    work_date = dt.date(2026, 3, 2)
    minutes = 60
    source = EntrySource.API
    external_id = factory.Sequence(lambda n: f"ext-{n}")


def approval_policy() -> ApprovalPolicy:
    return ApprovalPolicy.objects.get(is_active=True)
