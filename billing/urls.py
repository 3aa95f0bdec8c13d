from django.urls import path
from django.views.generic import TemplateView

app_name = "billing"

# Placeholder until the CSV upload page lands.
urlpatterns = [
    path("import/", TemplateView.as_view(template_name="portal/home.html"), name="import-time"),
]
