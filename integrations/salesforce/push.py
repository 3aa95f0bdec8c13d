"""Salesforce out: each synced account shows its client's last invoice, billed year to date and outstanding.

Pulled from billing's issued invoices (a few grouped queries per batch of accounts, whatever their
number); only accounts whose figures differ from what was last sent (a fingerprint on the account's
ExternalRef) are written, 200 to a composite PATCH, each succeeding or failing on its own. Setting the
same values twice changes nothing, so a lost answer is simply sent again.

Figures are in the client's currency (invoices in another currency are left out of the sums):
- last invoice: number and issue date of the latest issued invoice (credit notes aside);
- billed year to date: issued invoices less issued credit notes, issued since 1 January;
- outstanding: finalized and sent invoices not yet paid, less the credit notes against them.
The account field names are settings (SALESFORCE_ACCOUNT_FIELDS: last_invoice_number, last_invoice_date,
billed_ytd, outstanding); one left empty is not written.
"""

import hashlib
import json
from decimal import Decimal

from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from billing.models import ISSUED_STATUSES, Invoice, InvoiceKind, InvoiceStatus
from clients.models import Client
from integrations.models import ExternalRef, Provider, RefKind
from integrations.providers import stream_of
from integrations.runs import SyncContext
from integrations.salesforce.client import UPDATE_BATCH, SalesforceClient
from integrations.salesforce.mapping import ACCOUNT_PUSH_FIELDS, SalesforceConfig

# This stream's entry in the registry (integrations/providers.py).
STREAM = stream_of(Provider.SALESFORCE, "account_updates")
UNPAID = (InvoiceStatus.FINALIZED, InvoiceStatus.SENT)


def _sums(invoices, client_ids: list[int]) -> dict[int, Decimal]:
    return dict(invoices.filter(client_id__in=client_ids, currency=F("client__currency"))
                .values("client_id").annotate(total=Sum("total")).values_list("client_id", "total"))


def account_figures(client_ids: list[int]) -> dict[int, dict]:
    """Per client: last invoice number and date, billed this year, outstanding (four queries)."""
    year_start = timezone.localdate().replace(month=1, day=1)
    issued = Invoice.objects.filter(status__in=ISSUED_STATUSES)
    latest = issued.filter(client=OuterRef("pk"), kind=InvoiceKind.INVOICE).order_by("-issue_date", "-id")
    last = {row["id"]: row for row in Client.objects.filter(id__in=client_ids).annotate(
        last_number=Subquery(latest.values("number")[:1]),
        last_date=Subquery(latest.values("issue_date")[:1])).values("id", "last_number", "last_date")}
    billed = _sums(issued.filter(issue_date__gte=year_start), client_ids)
    unpaid = issued.filter(Q(kind=InvoiceKind.INVOICE, status__in=UNPAID)
                           | Q(kind=InvoiceKind.CREDIT, credited_invoice__status__in=UNPAID))
    outstanding = _sums(unpaid, client_ids)
    zero = Decimal("0.00")
    return {client_id: {
        "last_invoice_number": last.get(client_id, {}).get("last_number"),
        "last_invoice_date": last.get(client_id, {}).get("last_date"),
        "billed_ytd": billed.get(client_id) or zero,
        "outstanding": outstanding.get(client_id) or zero,
    } for client_id in client_ids}


def _value(value):
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def account_update(config: SalesforceConfig, account_id: str, figures: dict) -> dict:
    """The account's new field values (only the fields configured)."""
    return {"Id": account_id, **{config.api("account", name): _value(figures[name])
                                 for name in ACCOUNT_PUSH_FIELDS if config.api("account", name)}}


def fingerprint(update: dict) -> str:
    return hashlib.sha256(json.dumps(update, sort_keys=True).encode()).hexdigest()[:32]


def push_account_updates(ctx: SyncContext) -> None:
    config = SalesforceConfig.from_connection(ctx.connection)
    if not any(config.api("account", name) for name in ACCOUNT_PUSH_FIELDS):
        ctx.say("no account fields to write (SALESFORCE_ACCOUNT_FIELDS leaves them all out)")
        return
    client = SalesforceClient(ctx.connection, track=ctx.track)
    account_object = config.objects["account_object"]
    accounts = ExternalRef.objects.filter(provider=Provider.SALESFORCE, kind=RefKind.CLIENT,
                                          local_id__isnull=False).order_by("id")
    last_id = 0
    while refs := list(accounts.filter(id__gt=last_id)[:UPDATE_BATCH]):
        last_id = refs[-1].id
        figures = account_figures([ref.local_id for ref in refs])
        due = []
        for ref in refs:
            update = account_update(config, ref.external_id, figures[ref.local_id])
            if ref.details.get("pushed") == fingerprint(update):
                ctx.add(unchanged=1)
            else:
                due.append((ref, update))
        if not due:
            continue
        results = client.update(account_object, [update for _, update in due])
        sent = []
        for (ref, update), result in zip(due, results, strict=False):
            if result.get("success"):
                ref.details = {**ref.details, "pushed": fingerprint(update),
                               "pushed_at": timezone.now().isoformat()}
                sent.append(ref)
                continue
            problems = "; ".join(f"{e.get('statusCode')}: {e.get('message')}"
                                 for e in result.get("errors") or [])
            ctx.note(f"Account {ref.label or ref.external_id} was not updated in Salesforce: {problems}")
        ExternalRef.objects.bulk_update(sent, ["details"])
        ctx.add(updated=len(sent))
        ctx.checkpoint()
    if warning := client.usage_warning:
        ctx.note(warning)
