"""What every outbound push shares: create an object at a provider exactly once, and tell a refusal of
one record from a failure of the whole run.

Providers without an idempotency key (Harvest, Kantata, HubSpot's logged emails) may act on a create whose
answer is then lost; `create_once` looks the object up by its natural key before every create, so such a
create is found and linked, never made twice.
"""

import time
from collections.abc import Callable

from integrations.http import ApiSession, IntegrationError, PermanentError, RetryableError


class DuplicateElsewhere(PermanentError):
    """The provider says the object exists, but not where our natural key looks for it."""


def create_once(session: ApiSession, *, lookup: Callable[[], dict | None], create: Callable[[], dict],
                duplicate: Callable[[IntegrationError], bool] = lambda error: False) -> tuple[dict, bool]:
    """Find the object by its natural key, else create it; (object, created). Never creates it twice.

    A create that fails retryably (429, 5xx, timeout, dropped connection) may have been done, so it is
    not repeated blindly: the lookup runs again first, after the usual backoff. A `duplicate` answer
    means the provider has it already: the lookup runs once more to find it.
    """
    policy = session.policy
    refused: IntegrationError | None = None
    for attempt in range(1, policy.attempts + 1):
        found = lookup()
        if found is not None:
            return found, False
        if refused is not None:
            raise DuplicateElsewhere(str(refused), provider=session.provider, status=refused.status)
        try:
            return create(), True
        except RetryableError as error:
            wait = error.retry_after if error.retry_after is not None else policy.backoff_for(attempt)
            if attempt >= policy.attempts or wait > policy.max_wait:
                raise
            session.retries += 1
            session.waits.append(wait)
            time.sleep(min(wait, policy.wait_cap))
        except PermanentError as error:
            if not duplicate(error):
                raise
            refused = error
    raise RetryableError(f"{session.provider}: no answer to the create after {policy.attempts} attempts",
                         provider=session.provider)


def about_the_record(error: PermanentError) -> bool:
    """A refusal of this one object (validation, not found, conflict); anything else stops the run."""
    return error.status in (400, 404, 409, 422)
