"""What a benchmark is told: where its database is, how big to make things, where to log."""

from collections.abc import Callable
from dataclasses import dataclass

from bench.generator import FirmSize
from bench.harness import database_url


@dataclass
class Context:
    server: str
    database: str
    template: str
    entries: int | None
    size: FirmSize
    log: Callable[[str], None]

    def url(self, database: str | None = None) -> str:
        return database_url(self.server, database or self.database)

    def scaled(self, default: int) -> int:
        """The benchmark's entry count: the issue's size unless --entries asked for another."""
        return self.entries or default
