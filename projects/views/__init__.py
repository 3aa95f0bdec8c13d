"""The staff portal: home, weekly timesheet, single entries and "My time"."""

from projects.views.budgets import projects_budgets
from projects.views.entries import entry_delete, entry_edit, entry_new, my_time
from projects.views.home import home
from projects.views.timesheet import timesheet

__all__ = ["entry_delete", "entry_edit", "entry_new", "home", "my_time", "projects_budgets", "timesheet"]
