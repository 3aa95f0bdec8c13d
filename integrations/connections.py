"""Each provider's connection settings, read from the environment (config/settings.py, INTEGRATIONS block).

Credentials never live in the database: a provider is enabled exactly when its token is set
(`<PREFIX>_API_TOKEN`, or the setting named in TOKEN_SETTINGS), and tests and demos point
`<PREFIX>_BASE_URL` at the local fakes.
"""

from dataclasses import dataclass, field

from django.conf import settings

from integrations.models import Provider

# Settings read into `options`, per provider, beside <PREFIX>_BASE_URL and <PREFIX>_API_TOKEN.
OPTION_SETTINGS: dict[str, tuple[str, ...]] = {
    Provider.TOGGL: ("TOGGL_WORKSPACE_ID", "TOGGL_WEBHOOK_SECRET", "TOGGL_BACKFILL_DAYS", "TOGGL_REPULL_DAYS"),
    Provider.MONDAY: ("MONDAY_BOARD_IDS", "MONDAY_API_VERSION", "MONDAY_WEBHOOK_SECRET", "MONDAY_FULL_SYNC_HOURS"),
    Provider.SALESFORCE: ("SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET", "SALESFORCE_API_VERSION",
                          "SALESFORCE_ACCOUNT_OBJECT", "SALESFORCE_CONTRACT_OBJECT", "SALESFORCE_RATE_OBJECT",
                          "SALESFORCE_RATE_LINE_OBJECT", "SALESFORCE_RATE_LINES_RELATIONSHIP",
                          "SALESFORCE_ACCOUNT_FIELDS", "SALESFORCE_CONTRACT_FIELDS", "SALESFORCE_RATE_FIELDS",
                          "SALESFORCE_RATE_LINE_FIELDS", "SALESFORCE_ACCOUNT_FILTER"),
    Provider.KANTATA: ("KANTATA_FIGURE_FIELDS",),
    Provider.HUBSPOT: ("HUBSPOT_TRANSACTIONAL_EMAIL_ID",),
    Provider.HARVEST: ("HARVEST_ACCOUNT_ID",),
}
# The setting holding a provider's secret where it is not <PREFIX>_API_TOKEN (Salesforce logs in with
# OAuth client credentials: its client secret is what enables it).
TOKEN_SETTINGS: dict[str, str] = {Provider.SALESFORCE: "SALESFORCE_CLIENT_SECRET"}


def token_setting(provider: str) -> str:
    """The name of the setting that enables a provider (for messages to the operator)."""
    return TOKEN_SETTINGS.get(provider, f"{provider.upper()}_API_TOKEN")


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
                      token=getattr(settings, token_setting(provider), ""), options=options)


# Settings a provider cannot work without, beside its token.
REQUIRED_SETTINGS: dict[str, tuple[str, ...]] = {
    Provider.TOGGL: ("TOGGL_WORKSPACE_ID",),
    Provider.MONDAY: ("MONDAY_BOARD_IDS",),
    Provider.SALESFORCE: ("SALESFORCE_BASE_URL", "SALESFORCE_CLIENT_ID"),
    Provider.HARVEST: ("HARVEST_ACCOUNT_ID",),
}


def setup_hint(provider: str) -> str:
    """What to set to turn a provider on: "SALESFORCE_CLIENT_SECRET, with SALESFORCE_BASE_URL and ..."."""
    others = [name for name in REQUIRED_SETTINGS.get(provider, ()) if not getattr(settings, name, None)]
    if not others:
        return token_setting(provider)
    return f"{token_setting(provider)}, with " + (
        f"{', '.join(others[:-1])} and {others[-1]}" if len(others) > 1 else others[0])


def missing_settings(provider: str) -> list[str]:
    """Settings an enabled provider cannot work without (for the system check and the status page)."""
    conn = connection_for(provider)
    if not conn.enabled:
        return []
    return [name for name in REQUIRED_SETTINGS.get(provider, ()) if not getattr(settings, name, None)]
