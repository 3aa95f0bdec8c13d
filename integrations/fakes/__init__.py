"""In-memory fakes of the outside APIs, served on loopback for tests and demos (see base.py)."""

from integrations.fakes.base import FakeService, LoopbackServer, RecordedRequest
from integrations.fakes.monday import FakeMonday
from integrations.fakes.toggl import FakeToggl

__all__ = ["FakeMonday", "FakeService", "FakeToggl", "LoopbackServer", "RecordedRequest"]
