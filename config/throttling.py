"""Login throttling: repeated failed sign-ins are refused per username and per client address.

Both login pages (the portal's and the admin's) use the forms below. After `LOGIN_FAILURE_LIMIT` failures
for one username, or `LOGIN_IP_FAILURE_LIMIT` from one address, within `LOGIN_FAILURE_WINDOW_SECONDS`, the
form refuses every attempt, even with the right password, until the oldest counted failure leaves the
window; the page answers 429. A successful sign-in clears the username's count. A refused attempt is not
counted itself, so hammering a locked form does not extend the lock.

The failures live in Django's cache (timestamps in a sliding window). Several web processes share the
count when the cache is shared (`CACHE_URL`, see settings).
"""

import hashlib
import math
import time
from functools import wraps

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.forms.forms import NON_FIELD_ERRORS

THROTTLED = "throttled"


def client_address(request) -> str:
    """The client's address: behind N trusted proxies, the Nth address from the end of X-Forwarded-For.

    Only the addresses our own proxies appended can be believed; anything before them the client wrote.
    """
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def _key(kind: str, value: str) -> str:
    # Hashed: usernames may hold characters some cache backends refuse in keys, and any length.
    return f"login-failures:{kind}:{hashlib.sha256(value.encode()).hexdigest()}"


class LoginAttempts:
    """The recent failures of one username and one client address."""

    def __init__(self, request, username: str):
        self.window = settings.LOGIN_FAILURE_WINDOW_SECONDS
        self.limits = {
            _key("user", username.strip().lower()): settings.LOGIN_FAILURE_LIMIT,
            _key("ip", client_address(request) if request is not None else ""): settings.LOGIN_IP_FAILURE_LIMIT,
        }
        self.user_key = next(iter(self.limits))

    def _recent(self, key: str, now: float) -> list[float]:
        return [moment for moment in cache.get(key, []) if moment > now - self.window]

    def seconds_locked(self) -> int:
        """0 when an attempt may go ahead, else how long until the oldest counted failure leaves the window."""
        now = time.time()
        wait = 0.0
        for key, limit in self.limits.items():
            recent = self._recent(key, now)
            if len(recent) >= limit:
                wait = max(wait, sorted(recent)[-limit] + self.window - now)
        return math.ceil(wait)

    def failed(self) -> None:
        now = time.time()
        for key in self.limits:
            cache.set(key, [*self._recent(key, now), now], timeout=self.window)

    def succeeded(self) -> None:
        # Only the username's count: a valid account of one's own must not wipe an address's failures.
        cache.delete(self.user_key)


def _minutes(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class ThrottledLoginMixin:
    """Refuses a locked username or address before checking the password; counts each failed check."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        attempts = LoginAttempts(self.request, username)
        locked = attempts.seconds_locked()
        if locked:
            self.seconds_locked = locked
            raise ValidationError(
                "Too many failed sign-in attempts. For your security this sign-in is blocked for now: "
                "try again in %(wait)s.", code=THROTTLED, params={"wait": _minutes(locked)},
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            attempts.failed()
            raise
        attempts.succeeded()
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    """The portal's login form."""


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The admin's login form (it also refuses users without admin access)."""


def too_many_requests_when_throttled(view):
    """A login view whose refused-for-throttling answer is a 429 with Retry-After, the page itself unchanged."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        form = (getattr(response, "context_data", None) or {}).get("form")
        if form is not None and form.has_error(NON_FIELD_ERRORS, THROTTLED):
            response.status_code = 429
            response["Retry-After"] = str(getattr(form, "seconds_locked", settings.LOGIN_FAILURE_WINDOW_SECONDS))
        return response

    return wrapped
