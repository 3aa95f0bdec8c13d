"""What the connectors remember: cursors, runs, the ids of outside objects, the quarantine, webhook events.

Connection settings (base URL, token, options) come from the environment: see integrations/connections.py.
"""

from django.db import models
from django.db.models import Q


class Provider(models.TextChoices):
    TOGGL = "toggl", "Toggl Track"
    MONDAY = "monday", "Monday.com"
    SALESFORCE = "salesforce", "Salesforce"
    KANTATA = "kantata", "Kantata"
    HUBSPOT = "hubspot", "HubSpot"
    HARVEST = "harvest", "Harvest"


class SyncCursor(models.Model):
    """How far one stream of one provider has been read, and who is reading it now.

    `position` is whatever the stream needs to continue (a date, a timestamp, a page token), as JSON.
    A run claims the stream by setting `leased_until` with a conditional UPDATE, so two workers never
    sync the same stream at once; a killed run's lease simply expires.
    """

    provider = models.CharField(max_length=16, choices=Provider.choices)
    stream = models.CharField(max_length=40)
    position = models.JSONField(default=dict, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "stream"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "stream"], name="synccursor_one_per_stream"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} · {self.stream}"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    # Finished, but some records were quarantined or some calls failed.
    PARTIAL = "partial", "Finished with problems"
    FAILED = "failed", "Failed"
    # Still "running" when its lease expired: the worker died or was killed.
    ABANDONED = "abandoned", "Abandoned"


class SyncRun(models.Model):
    """One run of one stream: what it did and what went wrong, for the operator."""

    provider = models.CharField(max_length=16, choices=Provider.choices)
    stream = models.CharField(max_length=40)
    trigger = models.CharField(max_length=20, default="schedule",
                               help_text="schedule, command, admin, webhook or retry")
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    # Changes (edits or deletions) at the source to entries already invoiced: flagged for finance.
    conflicts = models.PositiveIntegerField(default=0)
    quarantined = models.PositiveIntegerField(default=0)
    # Records deliberately left for later (a Toggl timer still running).
    skipped = models.PositiveIntegerField(default=0)
    # Calls repeated after a rate limit, a server error or a timeout.
    retries = models.PositiveIntegerField(default=0)
    errors = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            # The status page and the admin: the latest runs of each provider and stream.
            models.Index(fields=["provider", "stream", "-started_at"], name="syncrun_latest_per_stream"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} · {self.stream} · {self.started_at:%Y-%m-%d %H:%M}"

    def counts_text(self) -> str:
        return (f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.deleted} deleted, {self.conflicts} conflicts, {self.quarantined} quarantined, "
                f"{self.skipped} skipped, {self.retries} retries")


class RefKind(models.TextChoices):
    MEMBER = "member", "Team member"
    PROJECT = "project", "Project"
    CLIENT = "client", "Client"
    TASK_TYPE = "task_type", "Task type"
    # Written by connectors, never mapped by hand: what our object is called at the provider.
    CONTRACT = "contract", "Contract"
    RATE = "rate", "Rate"
    INVOICE = "invoice", "Invoice"
    EMAIL = "email", "Logged email"
    SEND = "send", "Email send"


class MatchedBy(models.TextChoices):
    NONE = "", "Not mapped yet"
    EMAIL = "email", "Email"
    CODE = "code", "Code"
    NAME = "name", "Name"
    MANUAL = "manual", "By hand"


class ExternalRef(models.Model):
    """An outside object (a Toggl user, a monday board...) and the local object it stands for.

    Created automatically the first time a connector meets the object, matched by email, code or name
    where that is unambiguous; otherwise `local_id` stays empty until someone maps it in the admin, and
    records that need it wait in the quarantine.
    """

    provider = models.CharField(max_length=16, choices=Provider.choices)
    kind = models.CharField(max_length=16, choices=RefKind.choices)
    external_id = models.CharField(max_length=128)
    # The id of the TeamMember / Project / Client / TaskType (by `kind`); empty while unmapped.
    local_id = models.PositiveBigIntegerField(null=True, blank=True)
    # What the provider calls it, for people reading the admin.
    label = models.CharField(max_length=255, blank=True)
    # What the provider told us about it (email, name, code): matching is tried again from these.
    details = models.JSONField(default=dict, blank=True)
    matched_by = models.CharField(max_length=8, choices=MatchedBy.choices, default=MatchedBy.NONE, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "kind", "label", "external_id"]
        verbose_name = "external reference"
        constraints = [
            models.UniqueConstraint(fields=["provider", "kind", "external_id"], name="externalref_unique_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.get_kind_display().lower()} {self.label or self.external_id}"


class RecordStatus(models.TextChoices):
    QUARANTINED = "quarantined", "Quarantined"
    PROCESSED = "processed", "Processed"
    # Deleted at the source while still quarantined: nothing left to process.
    DISCARDED = "discarded", "Discarded"


class InboundRecord(models.Model):
    """The quarantine: a record a connector could not take in, kept whole with the reason.

    Each sync (and the admin's retry action) takes the quarantined records through the pipeline again,
    so one lands as soon as its mapping exists.
    """

    provider = models.CharField(max_length=16, choices=Provider.choices)
    kind = models.CharField(max_length=24, default="time_entry")
    external_id = models.CharField(max_length=128)
    payload = models.JSONField()
    status = models.CharField(max_length=12, choices=RecordStatus.choices, default=RecordStatus.QUARANTINED)
    reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_attempt_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "kind", "external_id"], name="inboundrecord_unique_per_kind"),
        ]
        indexes = [
            # Retries and the status page read only what is still quarantined, per provider.
            models.Index(fields=["provider", "kind"], condition=Q(status="quarantined"),
                         name="inboundrecord_quarantined"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.kind} {self.external_id}"


class WebhookEvent(models.Model):
    """A delivered webhook event, stored once: a replayed or re-delivered event id changes nothing."""

    provider = models.CharField(max_length=16, choices=Provider.choices)
    event_id = models.CharField(max_length=128)
    received_at = models.DateTimeField(auto_now_add=True)
    payload = models.JSONField()
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="webhookevent_once_per_provider"),
        ]
        indexes = [
            # Each sync finishes events a crash left unprocessed.
            models.Index(fields=["provider", "received_at"], condition=Q(processed_at__isnull=True),
                         name="webhookevent_unprocessed"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} event {self.event_id}"

    @property
    def processed(self) -> bool:
        return self.processed_at is not None
