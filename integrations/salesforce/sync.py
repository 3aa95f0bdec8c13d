"""Salesforce in: accounts → clients, contracts → contracts, rate cards → rates; changed terms re-rate.

- One stream ("terms") reads the three objects in that order, each incrementally: SOQL on SystemModstamp
  after where the last run got to (less OVERLAP, for rows committed late), ordered by it, page by page
  through `nextRecordsUrl`. Each page lands in one transaction together with the position it reached;
  once a query is read to its end, the position becomes the org's clock at the time of the query.
- Accounts: matched to an existing client by code or name the first time (an ExternalRef), else a new
  client; later edits update it. SALESFORCE_ACCOUNT_FILTER chooses which accounts are clients.
- Contracts: the account must be synced; a contract whose account is not waits in the quarantine and
  lands once it is. A contract already in Billable with the same number is linked, not duplicated.
- Rate cards: a card's lines become its contract's rates over the card's dates, applied whole or not at
  all (an unknown role, task type or member, or an overlap, quarantines the card with the reason).
  Lines removed remove their rates. Editing a line need not touch its card's stamp, so lines changed
  since the last run are read too and their cards read again.
- A change to a term that rating reads, or to a rate, queues reprocessing of the contract's entries not
  yet invoiced (billing.pipeline.queue_reprocessing, once the page commits).
- Deleted in Salesforce (queryAll lists them): a deleted rate card's rates are removed; a deleted account
  or contract is reported and kept, since invoices hang off it.
- At the end, records quarantined by earlier runs are tried again: a contract whose account has arrived
  since lands.
"""

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta

from django.db import transaction

from billing.pipeline import queue_reprocessing
from integrations.inbound import LandingResult, quarantine_records, release_records
from integrations.models import InboundRecord, Provider, RecordStatus
from integrations.providers import stream_of
from integrations.runs import SyncContext, retry_quarantined
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.landing import (
    ACCOUNT,
    CONTRACT,
    RATE_CARD,
    Outcome,
    land_accounts,
    land_contracts,
    land_rate_cards,
)
from integrations.salesforce.mapping import (
    Parsed,
    SalesforceConfig,
    account_soql,
    changed_lines_soql,
    contract_soql,
    parse_account,
    parse_contract,
    parse_rate_card,
    rate_card_soql,
    rate_cards_by_id_soql,
)

# This stream's entry in the registry (integrations/providers.py).
STREAM = stream_of(Provider.SALESFORCE, "terms")
# Re-read this far before the last position: rows committed late carry an earlier stamp.
OVERLAP = timedelta(minutes=2)
# Card ids per query when reading cards whose lines changed.
IDS_PER_QUERY = 200


LANDERS: dict[str, Callable[[list[Parsed], SalesforceConfig], Outcome]] = {
    ACCOUNT: land_accounts, CONTRACT: land_contracts, RATE_CARD: land_rate_cards}
# The cursor keeps one position per object, and one for rate lines.
LINES_POSITION = "rate_lines"


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class TermsSync:
    def __init__(self, ctx: SyncContext):
        self.ctx = ctx
        self.config = SalesforceConfig.from_connection(ctx.connection)
        self.client = SalesforceClient(ctx.connection, track=ctx.track)
        self.position = ctx.position
        # The quarantine retry at the end of the run uses this one too (one login a run).
        ctx.state["salesforce"] = self

    def land(self, kind: str, parsed: list[Parsed], *, position: dict | None = None) -> Outcome:
        """One batch in one transaction (with the position it reached), then counted and reported."""
        with transaction.atomic():
            outcome = LANDERS[kind](parsed, self.config)
            payloads = {record.id: record.payload for record in parsed}
            quarantine_records(provider=Provider.SALESFORCE, kind=kind,
                               records={i: (payloads[i], reason) for i, reason in outcome.reasons.items()})
            release_records(provider=Provider.SALESFORCE, kind=kind, external_ids=outcome.landed,
                            status=RecordStatus.PROCESSED)
            release_records(provider=Provider.SALESFORCE, kind=kind, external_ids=outcome.gone,
                            status=RecordStatus.DISCARDED)
            by_day: dict[date | None, list[int]] = defaultdict(list)
            for contract_id, from_date in outcome.reprocess.items():
                by_day[from_date].append(contract_id)
            for from_date, contract_ids in by_day.items():
                queue_reprocessing(contract_ids=contract_ids, from_date=from_date)
            if position is not None:
                self.ctx.save_position(position)
        self.ctx.absorb(LandingResult(created=outcome.created, updated=outcome.updated,
                                      unchanged=outcome.unchanged, reasons=outcome.reasons,
                                      landed_ids=outcome.landed))
        self.ctx.add(deleted=outcome.deleted)
        for note in outcome.notes:
            self.ctx.note(note)
        self.ctx.checkpoint()
        return outcome

    def parse(self, kind: str, record: dict) -> Parsed:
        if kind == ACCOUNT:
            return parse_account(record, self.config)
        if kind == CONTRACT:
            return parse_contract(record, self.config)
        relationship = self.config.objects["rate_lines_relationship"]
        lines = self.client.children(record.get(relationship))
        # Kept whole, lines included, in case the card is quarantined.
        record = {**record, relationship: {"totalSize": len(lines), "done": True, "records": lines}}
        return parse_rate_card(record, self.config, lines)

    def read(self, kind: str, soql: str, *, key: str | None = None) -> set[str]:
        """Read a query to its end, landing each page; returns the ids read."""
        started: datetime | None = None
        read: set[str] = set()
        for number, page in enumerate(self.client.query(soql), start=1):
            started = started or page.server_time
            parsed = [self.parse(kind, record) for record in page.records]
            read |= {record.id for record in parsed}
            if key:
                stamps = [record.stamp for record in parsed if record.stamp]
                reached = max([*stamps, *filter(None, [_moment(self.position.get(key))])], default=None)
                if reached:
                    self.position[key] = reached.isoformat()
            outcome = self.land(kind, parsed, position=self.position if key else None)
            self.ctx.say(f"{kind.replace('_', ' ')}s page {number}: {len(parsed)} read, {outcome.created} "
                         f"created, {outcome.updated} updated, {outcome.unchanged} unchanged, "
                         f"{len(outcome.reasons)} quarantined, {len(outcome.gone)} deleted in Salesforce")
        if key and started:
            # Read to the end: the next run starts from the org's clock when this query ran.
            reached = max(filter(None, [started, _moment(self.position.get(key))]))
            self.position[key] = reached.isoformat()
            with transaction.atomic():
                self.ctx.save_position(self.position)
        return read

    def since(self, key: str) -> datetime | None:
        moment = _moment(self.position.get(key))
        return moment - OVERLAP if moment else None

    def run(self) -> None:
        config = self.config
        self.read(ACCOUNT, account_soql(config, self.since("accounts")), key="accounts")
        self.read(CONTRACT, contract_soql(config, self.since("contracts")), key="contracts")
        if config.reads_rates:
            lines_since = self.since(LINES_POSITION)
            first = "rate_cards" not in self.position
            read = self.read(RATE_CARD, rate_card_soql(config, self.since("rate_cards")), key="rate_cards")
            self.read_changed_lines(None if first else lines_since, read)
        # Records quarantined by earlier runs whose account or contract has landed since; the ones this
        # run just quarantined have had their chance.
        earlier = list(InboundRecord.objects.filter(
            provider=Provider.SALESFORCE, status=RecordStatus.QUARANTINED,
            last_attempt_at__lt=self.ctx.run.started_at).values_list("id", flat=True))
        if earlier:
            retry_quarantined(self.ctx, STREAM, record_ids=earlier)
        if warning := self.client.usage_warning:
            self.ctx.note(warning)

    def read_changed_lines(self, since: datetime | None, read: set[str]) -> None:
        """Cards whose lines changed (or were deleted) without their own stamp moving: read them again."""
        card_field = self.config.api("rate_line", "card")
        cards: set[str] = set()
        started = None
        if since is not None:
            for page in self.client.query(changed_lines_soql(self.config, since)):
                started = started or page.server_time
                cards |= {str(line.get(card_field)) for line in page.records if line.get(card_field)}
            cards -= read
            ordered = sorted(cards)
            for start in range(0, len(ordered), IDS_PER_QUERY):
                self.read(RATE_CARD, rate_cards_by_id_soql(self.config, ordered[start:start + IDS_PER_QUERY]))
        else:
            # The first run reads every card: only later line changes matter.
            started = _moment(self.position.get("rate_cards"))
        if started:
            self.position[LINES_POSITION] = started.isoformat()
            with transaction.atomic():
                self.ctx.save_position(self.position)


def sync_terms(ctx: SyncContext) -> None:
    TermsSync(ctx).run()


def retry_records(ctx: SyncContext, records: list[InboundRecord]) -> None:
    """Quarantined accounts, contracts and rate cards, mapped again from their stored payloads, in order."""
    sync = ctx.state.get("salesforce") or TermsSync(ctx)
    relationship = sync.config.objects["rate_lines_relationship"]
    for kind in (ACCOUNT, CONTRACT, RATE_CARD):
        payloads = [record.payload for record in records
                    if record.kind == kind and isinstance(record.payload, dict)]
        if not payloads:
            continue
        if kind == RATE_CARD:
            # The lines were stored with the card: no call to Salesforce for them.
            parsed = [parse_rate_card(payload, sync.config,
                                      (payload.get(relationship) or {}).get("records") or [])
                      for payload in payloads]
        else:
            parsed = [sync.parse(kind, payload) for payload in payloads]
        sync.land(kind, parsed)
