"""Webhook endpoints, mounted by config/urls.py at /api/v1/webhooks/ (before the API router)."""

from django.urls import path

from integrations.monday.webhooks import monday_webhook
from integrations.toggl.webhooks import toggl_webhook

app_name = "webhooks"

urlpatterns = [
    path("toggl/", toggl_webhook, name="toggl"),
    path("monday/", monday_webhook, name="monday"),
]
