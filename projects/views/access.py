"""Who may use the time-logging pages: a logged-in team member with the log_time permission."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


def forbidden(request, reason: str):
    return render(request, "portal/forbidden.html", {"reason": reason}, status=403)


def member_required(view):
    """Pass the request's team member to the view, or explain with a 403 why this login cannot log time."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.has_perm("projects.log_time"):
            return forbidden(request, "Your account is not allowed to log time. "
                                      "Ask an administrator to give you the staff role.")
        member = getattr(request.user, "member", None)
        if member is None:
            return forbidden(request, "Your login is not linked to a team member, so it has no time of its own. "
                                      "An administrator can create a team member for it.")
        return view(request, *args, member=member, **kwargs)

    return wrapped
