"""Who may use the invoice screens: anyone who may view invoices reads them; acting needs the role's permission.

Management views invoices; finance also runs billing, manages drafts and issues, sends, voids and credits.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required

from projects.views.access import forbidden

REFUSALS = {
    "billing.view_invoice": "Your account cannot see invoices. Ask an administrator for the finance or "
                            "management role.",
    "billing.run_billing": "Your account can look at invoices but not run billing or change drafts. "
                           "Ask finance to do it.",
    "billing.finalize_invoice": "Your account can look at invoices but not finalize, send, void or credit "
                                "them. Ask finance to do it.",
}


def invoice_permission_required(permission: str):
    """Log in first; a login without the permission gets the portal's 403 page saying why."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.has_perm(permission):
                return forbidden(request, REFUSALS[permission])
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
