"""Harvest out: every issued invoice created once in Harvest, with our lines, totals and number.

Pulled, never pushed by billing: each run asks for issued invoices (finalized, sent or paid; credit notes
stay in Billable) that have no Harvest reference yet, oldest first, in batches.

Never twice, also when an answer is lost after Harvest acted: before every create the invoice is looked
up in Harvest by its natural key (the client's invoices issued that day, matched by number), and the
ExternalRef is stored only once Harvest has answered. A create whose answer was lost (timeout, dropped
connection, 5xx) is therefore found by the next lookup, in this run or the next, and linked instead of
created again; Harvest's own "Number has already been taken" is the last safety net.

Clients are matched the same way (our client → the Harvest client of that name, created if missing).
A new Harvest invoice is a draft; it is then marked sent without emailing anyone (the client already has
ours), and a draft left by a failure is marked at the next run.
"""

from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Prefetch, Subquery

from billing.models import ISSUED_STATUSES, Invoice, InvoiceKind, InvoiceLine
from clients.models import Client
from integrations.harvest.client import HarvestClient, already_taken
from integrations.http import PermanentError
from integrations.models import ExternalRef, MatchedBy, Provider, RefKind
from integrations.outbound import DuplicateElsewhere, about_the_record, create_once
from integrations.providers import stream_of
from integrations.runs import SyncContext

# This stream's entry in the registry (integrations/providers.py).
STREAM = stream_of(Provider.HARVEST, "invoices")
# The ExternalRef kind linking one of our invoices to Harvest's.
INVOICE = RefKind.INVOICE
BATCH = 50
# Harvest's default invoice item category for services.
LINE_KIND = "Service"
CENT = Decimal("0.01")


def pending_invoices():
    """Issued invoices not yet in Harvest, oldest first (one query, lines prefetched)."""
    pushed = ExternalRef.objects.filter(provider=Provider.HARVEST, kind=INVOICE).values("local_id")
    return (Invoice.objects.filter(kind=InvoiceKind.INVOICE, status__in=ISSUED_STATUSES)
            .exclude(id__in=Subquery(pushed)).select_related("client")
            .prefetch_related(Prefetch("lines", queryset=InvoiceLine.objects.order_by("position")))
            .order_by("issue_date", "id"))


def _money(value: Decimal) -> float:
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def line_items(invoice: Invoice) -> list[dict]:
    """Our lines as Harvest line items; Harvest's amounts must come out exactly as ours."""
    taxed = invoice.tax_rate > 0
    items = []
    for line in invoice.lines.all():
        quantity, unit_price, description = line.quantity, line.unit_rate, line.description
        if (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP) != line.amount:
            # Harvest computes quantity × unit price; our amount comes from exact minutes, and hours
            # rounded to 2 places can miss it by a cent. One unit at the line's amount keeps the total.
            description = f"{description} ({quantity} h at {unit_price}/h)"
            quantity, unit_price = Decimal("1"), line.amount
        items.append({"kind": LINE_KIND, "description": description, "quantity": float(quantity),
                      "unit_price": _money(unit_price), "taxed": taxed})
    return items


def invoice_body(invoice: Invoice, harvest_client_id: int) -> dict:
    return {
        "client_id": harvest_client_id, "number": invoice.number, "currency": invoice.currency,
        "issue_date": invoice.issue_date.isoformat(), "due_date": invoice.due_date.isoformat(),
        "payment_term": "custom",
        "subject": (f"Invoice {invoice.number}: {invoice.period_start:%d %b %Y} to "
                    f"{invoice.period_end:%d %b %Y}"),
        "notes": f"Billable invoice {invoice.number}.",
        "tax": float(invoice.tax_rate) if invoice.tax_rate else None,
        "line_items": line_items(invoice),
    }


class HarvestClients:
    """Our clients' Harvest ids: stored refs first, then Harvest's client list by name, else created."""

    def __init__(self, harvest: HarvestClient):
        self.harvest = harvest
        self._listing: list[dict] | None = None
        self.ids: dict[int, int] = {}
        # A client Harvest refused is not asked for again with each of its invoices.
        self.refused: dict[int, PermanentError] = {}

    def _named(self, name: str, *, fresh: bool) -> dict | None:
        if self._listing is None or fresh:
            self._listing = self.harvest.clients()
        key = name.strip().casefold()
        return next((c for c in self._listing if str(c.get("name", "")).strip().casefold() == key), None)

    def load(self, clients: set[Client]) -> None:
        """Read the stored refs of these clients (one query)."""
        wanted = {client.id for client in clients} - self.ids.keys()
        refs = ExternalRef.objects.filter(provider=Provider.HARVEST, kind=RefKind.CLIENT, local_id__in=wanted)
        for ref in refs:
            self.ids[ref.local_id] = int(ref.external_id)

    def id_of(self, client: Client) -> int:
        if client.id in self.ids:
            return self.ids[client.id]
        if client.id in self.refused:
            raise self.refused[client.id]
        try:
            return self._find_or_create(client)
        except PermanentError as error:
            self.refused[client.id] = error
            raise

    def _find_or_create(self, client: Client) -> int:
        lookups = iter([False])

        def lookup():
            # The first lookup may use the run's listing; any later one (after a failed create) reads afresh.
            return self._named(client.name, fresh=next(lookups, True))

        remote, created = create_once(
            self.harvest.session, lookup=lookup, duplicate=already_taken,
            create=lambda: self.harvest.create_client(name=client.name, currency=client.currency))
        if created and self._listing is not None:
            self._listing.append(remote)
        self._link(client, remote, created)
        self.ids[client.id] = int(remote["id"])
        return self.ids[client.id]

    @staticmethod
    def _link(client: Client, remote: dict, created: bool) -> None:
        ref, _ = ExternalRef.objects.get_or_create(
            provider=Provider.HARVEST, kind=RefKind.CLIENT, external_id=str(remote["id"]),
            defaults={"local_id": client.id, "label": str(remote.get("name", ""))[:255],
                      "details": {"name": remote.get("name", "")},
                      "matched_by": MatchedBy.MANUAL if created else MatchedBy.NAME})
        if ref.local_id is None:
            ref.local_id, ref.matched_by = client.id, MatchedBy.NAME
            ref.save(update_fields=["local_id", "matched_by", "updated_at"])
        elif ref.local_id != client.id:
            raise PermanentError(
                f"harvest: the Harvest client {remote.get('name')!r} is already linked to another of our "
                f"clients; two clients named {client.name!r} cannot share it (rename one, or map it under "
                "Integrations › External references)", provider=Provider.HARVEST)


def push_invoice(harvest: HarvestClient, invoice: Invoice, harvest_client_id: int) -> tuple[dict, bool]:
    """Create the invoice in Harvest unless it is there already; (Harvest's invoice, created)."""

    def lookup():
        return next((found for found in harvest.invoices_issued(client_id=harvest_client_id,
                                                                issue_date=invoice.issue_date.isoformat())
                     if found.get("number") == invoice.number), None)

    try:
        return create_once(harvest.session, lookup=lookup, duplicate=already_taken,
                           create=lambda: harvest.create_invoice(invoice_body(invoice, harvest_client_id)))
    except DuplicateElsewhere as error:
        raise PermanentError(
            f"harvest: Harvest already has an invoice numbered {invoice.number}, but not for this client "
            f"issued on {invoice.issue_date}: rename or delete that one in Harvest",
            provider=Provider.HARVEST, status=error.status) from error


def _store(invoice: Invoice, remote: dict, created: bool) -> ExternalRef:
    return ExternalRef.objects.create(
        provider=Provider.HARVEST, kind=INVOICE, external_id=str(remote["id"]), local_id=invoice.id,
        label=f"Invoice {invoice.number}"[:255], matched_by=MatchedBy.MANUAL if created else MatchedBy.CODE,
        details={"number": remote.get("number"), "state": remote.get("state"),
                 "amount": remote.get("amount")})


def _mark_sent(ctx: SyncContext, harvest: HarvestClient, refs: list[ExternalRef]) -> None:
    for ref in refs:
        try:
            harvest.mark_sent(ref.external_id)
        except PermanentError as error:
            if not about_the_record(error):
                raise
            ctx.note(f"Harvest invoice {ref.details.get('number')} could not be marked sent: {error}")
            continue
        ref.details = {**ref.details, "state": "open"}
        ref.save(update_fields=["details", "updated_at"])


def push_invoices(ctx: SyncContext) -> None:
    harvest = HarvestClient(ctx.connection)
    ctx.track(harvest.session)
    clients = HarvestClients(harvest)
    # Invoices refused this run (a validation error in Harvest): reported once, tried again next run.
    refused: set[int] = set()
    while batch := list(pending_invoices().exclude(id__in=refused)[:BATCH]):
        clients.load({invoice.client for invoice in batch})
        for invoice in batch:
            try:
                remote, created = push_invoice(harvest, invoice, clients.id_of(invoice.client))
            except PermanentError as error:
                if not about_the_record(error):
                    raise
                refused.add(invoice.id)
                ctx.note(f"Invoice {invoice.number} was not created in Harvest: {error}")
                continue
            with transaction.atomic():
                ref = _store(invoice, remote, created)
            if created:
                ctx.add(created=1)
            else:
                ctx.add(unchanged=1)
                ctx.say(f"invoice {invoice.number} was already in Harvest (an earlier answer was lost): "
                        "linked")
            if remote.get("amount") is not None and Decimal(str(remote["amount"])) != invoice.total:
                ctx.note(f"Harvest computes {remote.get('amount')} for invoice {invoice.number}, we say "
                         f"{invoice.total}: check its tax settings in Harvest")
            if remote.get("state") == "draft":
                _mark_sent(ctx, harvest, [ref])
        ctx.checkpoint()
        ctx.say(f"{len(batch)} invoices read: {ctx.run.created} created in Harvest so far")
    # Drafts left by a run that stopped between the create and the mark.
    _mark_sent(ctx, harvest, list(ExternalRef.objects.filter(provider=Provider.HARVEST, kind=INVOICE,
                                                             details__state="draft")))
    ctx.checkpoint()
