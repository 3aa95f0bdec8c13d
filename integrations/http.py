"""The one door to the outside: every connector's HTTP goes through `ApiSession` (the only user of requests).

- Timeouts on every call, a user agent naming us.
- Retries with exponential backoff on timeouts, lost connections, 429 and 5xx, honouring `Retry-After` and
  whatever the provider says about when to come back (its `classify` hook: Toggl's quota headers, monday's
  `retry_in_seconds` inside a 200 answer).
- A request is repeated only when it is safe to: reads, and writes the caller marks idempotent. A create
  that timed out may have been done, so it is never repeated blindly.
- Failures come out as `RetryableError` (try again later: the next run will) or `PermanentError` (someone
  must act: a bad token, a refused request).
"""

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

# Providers' classify hooks take answers of this type; they must not import requests themselves.
Response = requests.Response

USER_AGENT = "Billable/0.1 (+https://github.com/billable; integrations)"
IDEMPOTENT_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
# The text of an error answer kept in messages: enough to read, not a whole HTML page.
BODY_EXCERPT = 300


class IntegrationError(Exception):
    """A call to a provider that did not work; `status` is the HTTP status when there was an answer."""

    def __init__(self, message: str, *, provider: str = "", status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.retry_after = retry_after


class RetryableError(IntegrationError):
    """Worth trying again later: a rate limit, a server error, a timeout."""


class PermanentError(IntegrationError):
    """Trying again will not help until someone acts: bad credentials, a refused or malformed request."""


def seconds_from_header(value: str | None) -> float | None:
    """A `Retry-After`-style value (seconds, or an HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - timezone.now()).total_seconds())


def body_excerpt(response: requests.Response) -> str:
    text = (response.text or "").strip().replace("\n", " ")
    return text[:BODY_EXCERPT] + ("…" if len(text) > BODY_EXCERPT else "")


def default_classify(response: requests.Response, provider: str) -> IntegrationError | None:
    """None for a success; otherwise the error this answer means, by HTTP status."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    where = f"{response.request.method} {response.request.path_url}"
    retry_after = seconds_from_header(response.headers.get("Retry-After"))
    if status == 429:
        return RetryableError(f"{provider}: rate limited (429) on {where}", provider=provider, status=status,
                              retry_after=retry_after)
    if status in (408, 425) or status >= 500:
        return RetryableError(f"{provider}: server error {status} on {where}: {body_excerpt(response)}",
                              provider=provider, status=status, retry_after=retry_after)
    if status in (401, 403):
        return PermanentError(f"{provider}: the credentials were refused ({status}) on {where}: "
                              f"{body_excerpt(response)}. Check the API token.", provider=provider, status=status)
    return PermanentError(f"{provider}: {status} on {where}: {body_excerpt(response)}", provider=provider,
                          status=status)


@dataclass
class RetryPolicy:
    """How hard to try; read from settings each time a session is made, so tests can lower the waits."""

    attempts: int = 5
    backoff: float = 1.0
    # A provider asking for a longer wait than this ends the call: the next scheduled run goes on.
    max_wait: float = 300.0
    # The longest single sleep actually taken (tests and demos keep it tiny).
    wait_cap: float = 300.0

    @classmethod
    def from_settings(cls) -> "RetryPolicy":
        return cls(attempts=max(1, settings.INTEGRATIONS_MAX_ATTEMPTS), backoff=settings.INTEGRATIONS_BACKOFF_SECONDS,
                   max_wait=settings.INTEGRATIONS_MAX_WAIT_SECONDS, wait_cap=settings.INTEGRATIONS_WAIT_CAP_SECONDS)

    def backoff_for(self, attempt: int) -> float:
        # Exponential with a little jitter, so several workers do not come back in step.
        return self.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 4)


@dataclass
class ApiSession:
    """A provider's HTTP session: base URL, auth, timeouts and the retry rules above.

    `classify(response)` turns an answer into an error (or None); providers wrap `default_classify` to read
    their own signals. `retries` counts repeated calls and `waits` the waits asked for, for the run log.
    """

    provider: str
    base_url: str
    headers: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    timeout: float | None = None
    classify: Callable[[requests.Response], IntegrationError | None] | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy.from_settings)
    retries: int = 0
    waits: list[float] = field(default_factory=list)

    def __post_init__(self):
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json", **self.headers})
        if self.auth:
            self._session.auth = self.auth
        if self.timeout is None:
            self.timeout = settings.INTEGRATIONS_TIMEOUT_SECONDS

    def close(self) -> None:
        self._session.close()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"

    def request(self, method: str, path: str, *, params: dict | None = None, json: Any = None,
                idempotent: bool | None = None) -> requests.Response:
        """One call, repeated while the failure is retryable and repeating is safe; raises IntegrationError."""
        method = method.upper()
        repeatable = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        classify = self.classify or (lambda response: default_classify(response, self.provider))
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._session.request(method, self.url(path), params=params, json=json,
                                                 timeout=self.timeout)
            except requests.Timeout as exc:
                error: IntegrationError = RetryableError(
                    f"{self.provider}: no answer within {self.timeout:g}s on {method} {path}",
                    provider=self.provider)
                error.__cause__ = exc
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                    requests.exceptions.InvalidSchema) as exc:
                # A mistyped base URL: no amount of retrying fixes configuration.
                raise PermanentError(f"{self.provider}: bad URL for {method} {path}: {exc}",
                                     provider=self.provider) from exc
            except requests.RequestException as exc:
                # Refused or dropped connections, answers cut off half-way.
                error = RetryableError(f"{self.provider}: {method} {path} failed: {exc}", provider=self.provider)
                error.__cause__ = exc
            else:
                error = classify(response)
                if error is None:
                    return response
            if not isinstance(error, RetryableError) or not repeatable or attempt >= self.policy.attempts:
                raise error
            wait = error.retry_after if error.retry_after is not None else self.policy.backoff_for(attempt)
            if wait > self.policy.max_wait:
                raise RetryableError(f"{error} (asked to wait {wait:.0f}s: left for the next run)",
                                     provider=self.provider, status=error.status, retry_after=wait)
            self.retries += 1
            self.waits.append(wait)
            logger.info("%s; waiting %.1fs before attempt %d of %d", error, wait, attempt + 1,
                        self.policy.attempts)
            time.sleep(min(wait, self.policy.wait_cap))

    def get_json(self, path: str, *, params: dict | None = None) -> Any:
        return decode_json(self.request("GET", path, params=params), self.provider)

    def post_json(self, path: str, *, json: Any, idempotent: bool = False) -> Any:
        return decode_json(self.request("POST", path, json=json, idempotent=idempotent), self.provider)


def decode_json(response: requests.Response, provider: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise PermanentError(f"{provider}: the answer to {response.request.method} {response.request.path_url} "
                             f"is not JSON: {body_excerpt(response)}", provider=provider,
                             status=response.status_code) from None
