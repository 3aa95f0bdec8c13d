"""Running one stream of one provider: claim it, record the run, keep counts, release it.

A run is safe to repeat and to kill: each batch commits together with the cursor position it reached,
the stream is claimed with a lease (a conditional UPDATE), and a run killed half-way is marked
abandoned by the next one, which starts again from the last committed position.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Q, TextField, Value
from django.db.models.functions import Concat
from django.utils import timezone

from integrations.connections import Connection, connection_for, setup_hint
from integrations.http import ApiSession, IntegrationError, PermanentError, RetryableError
from integrations.inbound import LandingResult, RemovalResult
from integrations.models import InboundRecord, RecordStatus, RunStatus, SyncCursor, SyncRun
from integrations.providers import Stream, load, stream_of

logger = logging.getLogger(__name__)

# Longer than any batch takes: each committed batch renews it, so only a dead run lets it lapse.
LEASE = timedelta(minutes=15)
COUNTS = ("created", "updated", "unchanged", "deleted", "conflicts", "quarantined", "skipped")
# Quarantined records retried per batch at the start of each run.
RETRY_BATCH = 500


class StreamBusy(Exception):
    """Another run holds this stream's lease."""


class NotConfigured(Exception):
    """The provider has no token (or lacks a setting it needs)."""


@dataclass
class SyncContext:
    """What a provider's sync function gets: its run, cursor and connection, and ways to report."""

    run: SyncRun
    cursor: SyncCursor
    connection: Connection
    # Where progress lines go when someone watches (the sync command); the log otherwise.
    progress: Callable[[str], None] | None = None
    sessions: list[ApiSession] = field(default_factory=list)
    # A record still waiting after the retry and again after the poll counts once.
    quarantined_ids: set[str] = field(default_factory=set)
    # Whatever a provider keeps for the length of one run (its client, a directory of users...).
    state: dict = field(default_factory=dict)

    @property
    def position(self) -> dict:
        return dict(self.cursor.position or {})

    def track(self, session: ApiSession) -> ApiSession:
        """Count this session's retries in the run."""
        self.sessions.append(session)
        return session

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)
        else:
            logger.info("%s %s: %s", self.run.provider, self.run.stream, message)

    def note(self, message: str) -> None:
        """A problem worth the operator's eye; the run goes on."""
        self.say(message)
        self.run.errors = f"{self.run.errors}\n{message}".strip()

    def add(self, **counts: int) -> None:
        for name, value in counts.items():
            setattr(self.run, name, getattr(self.run, name) + value)

    def absorb(self, landed: LandingResult | None = None, removed: RemovalResult | None = None) -> None:
        if landed is not None:
            self.add(created=landed.created, updated=landed.updated, unchanged=landed.unchanged,
                     conflicts=landed.conflicts)
            self.quarantined_ids = (self.quarantined_ids - set(landed.landed_ids)) | landed.reasons.keys()
            self.run.quarantined = len(self.quarantined_ids)
        if removed is not None:
            self.add(deleted=removed.deleted, conflicts=removed.conflicts)

    def save_position(self, position: dict) -> None:
        """Call inside the batch's transaction: the position commits with the batch it follows."""
        self.cursor.position = position
        self.cursor.save(update_fields=["position", "updated_at"])

    def checkpoint(self) -> None:
        """Store the counts so far and renew the lease (after each committed batch)."""
        self.run.retries = sum(session.retries for session in self.sessions)
        self.run.save(update_fields=[*COUNTS, "retries", "errors"])
        SyncCursor.objects.filter(pk=self.cursor.pk).update(leased_until=timezone.now() + LEASE)


def _claim(cursor: SyncCursor) -> bool:
    now = timezone.now()
    return bool(SyncCursor.objects.filter(pk=cursor.pk).filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
                .update(leased_until=now + LEASE))


def run_stream(*, provider: str, stream: str | None = None, trigger: str = "schedule",
               progress: Callable[[str], None] | None = None,
               work: Callable[[SyncContext], None] | None = None) -> SyncRun:
    """Run one stream now and return its run record; raises NotConfigured or StreamBusy before starting.

    `work` replaces the stream's sync (the admin's retry runs only the quarantine, under the same lease).
    """
    spec: Stream = stream_of(provider, stream)
    conn = connection_for(provider)
    if not conn.enabled:
        raise NotConfigured(f"{conn.label} is not configured: set {setup_hint(provider)}.")
    cursor, _ = SyncCursor.objects.get_or_create(provider=provider, stream=spec.name)
    if not _claim(cursor):
        raise StreamBusy(f"{conn.label} {spec.name} is already being synced (lease until "
                         f"{timezone.localtime(cursor.leased_until):%H:%M:%S}).")
    cursor.refresh_from_db()
    now = timezone.now()
    SyncRun.objects.filter(provider=provider, stream=spec.name, status=RunStatus.RUNNING).update(
        status=RunStatus.ABANDONED, finished_at=now,
        errors=Concat("errors", Value("\nStopped before it finished (worker killed or crashed); "
                                      "the next run started again from the last committed batch."),
                      output_field=TextField()))
    run = SyncRun.objects.create(provider=provider, stream=spec.name, trigger=trigger, started_at=now)
    ctx = SyncContext(run=run, cursor=cursor, connection=conn, progress=progress)
    try:
        (work or load(spec.sync))(ctx)
    except PermanentError as error:
        ctx.note(f"Stopped: {error}")
        run.status = RunStatus.FAILED
    except RetryableError as error:
        ctx.note(f"Stopped: {error}. The next run continues from the last committed batch.")
        run.status = RunStatus.FAILED
    except IntegrationError as error:
        ctx.note(f"Stopped: {error}")
        run.status = RunStatus.FAILED
    except Exception as error:
        # A bug, not the provider: keep the traceback in the log and the gist in the run.
        logger.exception("%s %s sync crashed", provider, spec.name)
        ctx.note(f"Stopped by an unexpected error: {error.__class__.__name__}: {error}")
        run.status = RunStatus.FAILED
    else:
        problems = run.quarantined or run.errors
        run.status = RunStatus.PARTIAL if problems else RunStatus.SUCCEEDED
    finally:
        if run.status == RunStatus.RUNNING:
            # Interrupted (Ctrl-C, a worker shut down): what was committed stays, the next run goes on.
            ctx.note("Interrupted before it finished; the next run starts again from the last committed batch.")
            run.status = RunStatus.ABANDONED
        for session in ctx.sessions:
            session.close()
        run.retries = sum(session.retries for session in ctx.sessions)
        run.finished_at = timezone.now()
        run.save()
        SyncCursor.objects.filter(pk=cursor.pk).update(leased_until=None)
    return run


def retry_quarantined(ctx: SyncContext, spec: Stream, *, record_ids: list[int] | None = None) -> int:
    """Take the stream's quarantined records through the pipeline again, in batches; returns how many."""
    if spec.retry is None:
        return 0
    records = InboundRecord.objects.filter(provider=spec.provider, status=RecordStatus.QUARANTINED)
    if spec.record_kinds:
        records = records.filter(kind__in=spec.record_kinds)
    if record_ids is not None:
        records = records.filter(id__in=record_ids)
    retry = load(spec.retry)
    done, last_id = 0, 0
    while True:
        # Forward by id, so records quarantined again in this pass are not read twice.
        batch = list(records.filter(id__gt=last_id).order_by("id")[:RETRY_BATCH])
        if not batch:
            break
        retry(ctx, batch)
        done += len(batch)
        last_id = batch[-1].id
        ctx.checkpoint()
    if done:
        ctx.say(f"retried {done} quarantined records: {len(ctx.quarantined_ids)} still quarantined")
    return done
