from django.urls import path
from django.views.generic import TemplateView

app_name = "portal"

# Placeholder views until the portal pages land.
urlpatterns = [
    path("", TemplateView.as_view(template_name="portal/home.html"), name="home"),
    path("timesheet/", TemplateView.as_view(template_name="portal/home.html"), name="timesheet"),
    path("my-time/", TemplateView.as_view(template_name="portal/home.html"), name="my-time"),
]
