"""System checks: an enabled connector missing a setting it needs fails loudly at start-up, not at 3 am."""

from django.core.checks import Warning

from integrations.connections import missing_settings, token_setting
from integrations.providers import providers_with_streams


def check_connections(app_configs=None, **kwargs):
    return [
        Warning(f"{provider} has {token_setting(provider)} set but {name} is not set: its sync will fail.",
                hint=f"Set {name} in the environment, or unset {token_setting(provider)}.",
                id="integrations.W001")
        for provider in providers_with_streams() for name in missing_settings(provider)
    ]
