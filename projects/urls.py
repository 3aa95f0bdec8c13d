from django.urls import path

from projects import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("timesheet/", views.timesheet, name="timesheet"),
    path("my-time/", views.my_time, name="my-time"),
    path("projects/", views.projects_budgets, name="projects"),
    path("entries/new/", views.entry_new, name="entry-new"),
    path("entries/<int:pk>/edit/", views.entry_edit, name="entry-edit"),
    path("entries/<int:pk>/delete/", views.entry_delete, name="entry-delete"),
]
