"""Each provider's connection settings, read from the environment (config/settings.py, INTEGRATIONS block).

Credentials never live in the database: a provider is enabled exactly when its token is set, and tests and
demos point `<PROVIDER>_BASE_URL` at the local fakes.
"""

from dataclasses import dataclass, field

from django.conf import settings

from integrations.models import Provider

# Settings read into `options`, per provider, beside <PREFIX>_BASE_URL and <PREFIX>_API_TOKEN.
OPTION_SETTINGS: dict[str, tuple[str, ...]] = {
    Provider.TOGGL: ("TOGGL_WORKSPACE_ID", "TOGGL_WEBHOOK_SECRET", "TOGGL_BACKFILL_DAYS", "TOGGL_REPULL_DAYS"),
    Provider.MONDAY: ("MONDAY_BOARD_IDS", "MONDAY_API_VERSION", "MONDAY_WEBHOOK_SECRET", "MONDAY_FULL_SYNC_HOURS"),
}


@dataclass(frozen=True)
class Connection:
    provider: str
    base_url: str
    token: str
    # Lower-cased setting names without the provider prefix: {"workspace_id": "123", ...}.
    options: dict = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    @property
    def label(self) -> str:
        return Provider(self.provider).label

    def option(self, name: str, default=None):
        return self.options.get(name, default)


def connection_for(provider: str) -> Connection:
    prefix = provider.upper()
    options = {}
    for name in OPTION_SETTINGS.get(provider, ()):
        options[name.removeprefix(f"{prefix}_").lower()] = getattr(settings, name, None)
    return Connection(provider=provider, base_url=getattr(settings, f"{prefix}_BASE_URL", ""),
                      token=getattr(settings, f"{prefix}_API_TOKEN", ""), options=options)


def missing_settings(provider: str) -> list[str]:
    """Settings an enabled provider cannot work without (for the system check and the status page)."""
    conn = connection_for(provider)
    if not conn.enabled:
        return []
    needed = {Provider.TOGGL: ["TOGGL_WORKSPACE_ID"], Provider.MONDAY: ["MONDAY_BOARD_IDS"]}.get(provider, [])
    return [name for name in needed if not getattr(settings, name, None)]
