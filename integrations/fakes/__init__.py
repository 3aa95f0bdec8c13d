"""In-memory fakes of the outside APIs, served on loopback for tests and demos (see base.py)."""

from integrations.fakes.base import FakeService, LoopbackServer, LostAnswers, RecordedRequest
from integrations.fakes.harvest import FakeHarvest
from integrations.fakes.hubspot import FakeHubSpot
from integrations.fakes.kantata import FakeKantata
from integrations.fakes.monday import FakeMonday
from integrations.fakes.salesforce import FakeSalesforce
from integrations.fakes.toggl import FakeToggl

__all__ = ["FakeHarvest", "FakeHubSpot", "FakeKantata", "FakeMonday", "FakeSalesforce", "FakeService",
           "FakeToggl", "LoopbackServer", "LostAnswers", "RecordedRequest"]
