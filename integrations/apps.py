from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self):
        from django.core import checks

        from integrations.checks import check_connections

        checks.register(check_connections)
