from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("import/", views.import_time, name="import-time"),
]
