"""Monitoring mentions (issue 11, EN-1, EN-6): feeds watched per client account, keyword rules, the mentions
they find (or that staff enter by hand), and the triage queue that turns a mention into a conversation or
dismisses it with a reason.

- A source is an RSS/Atom URL of a client account (a deal; "agency" for the agency's own brand). Creating it
  creates its channel of kind `monitoring`, to which the conversations of its converted mentions belong.
- `FeedPoller` (a supervised loop, "engagement monitoring" in readiness) polls each due source: the HTTP call
  is made outside any transaction; the entries that match the account's rules are stored as mentions (one per
  entry id/link per source, the entry as parsed kept in `raw`) with `engagement.mention.received.v1`, in one
  transaction with the source's new state. A failing feed keeps its error on the source and is retried with
  back-off (feeds.retry_seconds); it never stops the loop or the other sources.
- Converting creates a conversation of kind `monitoring` (thread `mention`) holding the mention as its customer
  message, through the inbox's own `record_inbound` (assignment, tag rules, `engagement.message.received.v1`).
  Forums and review sites have no API we answer through: the agent answers on the site and records the reply in
  the conversation; such a reply is stored as `sent` at once and never queued for a channel.
- Who: the lead, integrations and monitoring staff run all of this; care agents see converted mentions in the
  inbox (the conversation's account, EN-6).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from shared.auth import Actor
from shared.clock import Clock
from shared.db import Database, skip_locked
from shared.errors import Conflict, DomainError, NotFound
from shared.events.engagement import MentionReceived
from shared.loop import WakeableLoop
from shared.outbox import add_event
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import access, feeds
from engagement.channels import Inbound
from engagement.crypto import encrypt_secrets
from engagement.inbound import record_inbound  # the inbox's own path for a customer's message
from engagement.models import AGENCY_ACCOUNT, Channel, KeywordRule, Mention, MonitoringSource, new_id
from engagement.schemas import DismissIn, KeywordRuleIn, MentionIn, SourceIn
from shared import messages as M

log = logging.getLogger(__name__)

KIND = "monitoring"   # the channel and conversation kind of converted mentions
THREAD = "mention"
STATUSES = ("new", "converted", "dismissed")
DISMISS_REASONS = ("spam", "irrelevant", "duplicate", "other")   # "other" needs a note saying why
TRIAGE = (access.LEAD, access.INTEGRATION, access.MONITORING)
MAX_OFFSET = 2**31 - 1
MANUAL_CHANNEL = "manual"   # external_id of an account's channel for mentions entered by hand


def require_triage(actor: Actor) -> None:
    access.require_roles(actor, *TRIAGE)


def _clean(value: str) -> str:
    """Trimmed, without NUL characters (PostgreSQL text cannot hold them)."""
    return value.replace("\x00", "").strip()


def _account(deal_id: str | None) -> tuple[str | None, str]:
    deal_id = _clean(deal_id or "")[:36] or None
    return deal_id, deal_id or AGENCY_ACCOUNT


# ---------------------------------------------------------------- sources

def source_out(s: MonitoringSource) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "url": s.url, "deal_id": s.deal_id, "account": s.account,
            "channel_id": s.channel_id, "interval_minutes": s.interval_seconds // 60, "active": s.active,
            "last_polled_at": s.last_polled_at, "last_ok_at": s.last_ok_at, "next_poll_at": s.next_poll_at,
            "error": s.error, "failures": s.failures}


async def _new_channel(session: AsyncSession, settings: Any, *, name: str, deal_id: str | None, account: str,
                       external_id: str, actor: str, now: datetime) -> Channel:
    channel = Channel(kind=KIND, name=name[:200], deal_id=deal_id, account=account, external_id=external_id[:100],
                      config={}, secrets=encrypt_secrets(settings, {}), webhook_secret_digest=None,
                      created_at=now, created_by=actor)
    session.add(channel)
    await session.flush()
    return channel


async def create_source(session: AsyncSession, actor: Actor, body: SourceIn, *, settings: Any,
                        clock: Clock) -> MonitoringSource:
    require_triage(actor)
    name, url = _clean(body.name), _clean(body.url)
    errors = []
    if not name:
        errors.append(M.item("name", M.REQUIRED))
    if not feeds.valid_url(url):
        errors.append(M.item("url", M.URL_FORMAT))
    interval = body.interval_minutes * 60
    if not feeds.MIN_INTERVAL <= interval <= feeds.MAX_INTERVAL:
        errors.append(M.item("interval_minutes", M.FEED_INTERVAL))
    if errors:
        raise DomainError("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)
    deal_id, account = _account(body.deal_id)
    clash = (await session.execute(select(MonitoringSource.id).where(
        MonitoringSource.account == account, MonitoringSource.url == url, MonitoringSource.active.is_(True)))).first()
    if clash:
        raise M.refusal(Conflict, "url", M.FEED_EXISTS)
    now = clock.now()
    source = MonitoringSource(id=new_id(), name=name[:200], url=url[:2000], deal_id=deal_id, account=account,
                              interval_seconds=interval, next_poll_at=now, failures=0, active=True, created_at=now,
                              created_by=actor.login)
    channel = await _new_channel(session, settings, name=source.name, deal_id=deal_id, account=account,
                                 external_id=f"source:{source.id}", actor=actor.login, now=now)
    source.channel_id = channel.id
    session.add(source)
    await session.flush()
    return source


async def list_sources(session: AsyncSession, actor: Actor, deal_id: str | None = None,
                       failing: bool = False) -> list[MonitoringSource]:
    require_triage(actor)
    conditions: list[Any] = [MonitoringSource.active.is_(True)]
    if deal_id:
        conditions.append(MonitoringSource.account == deal_id)
    if failing:
        conditions.append(MonitoringSource.error.is_not(None))
    return list((await session.execute(select(MonitoringSource).where(*conditions)
                                       .order_by(MonitoringSource.name, MonitoringSource.id))).scalars())


async def delete_source(session: AsyncSession, actor: Actor, source_id: str) -> None:
    """A deleted source stops being polled; its mentions and conversations stay."""
    require_triage(actor)
    source = await session.get(MonitoringSource, source_id)
    if source is None or not source.active:
        raise M.refusal(NotFound, None, M.FEED_NOT_FOUND)
    source.active = False


# ---------------------------------------------------------------- keyword rules

def rule_out(r: KeywordRule) -> dict[str, Any]:
    return {"id": r.id, "deal_id": r.deal_id, "account": r.account, "keywords": r.keywords,
            "exclusions": r.exclusions}


async def create_rule(session: AsyncSession, actor: Actor, body: KeywordRuleIn, clock: Clock) -> KeywordRule:
    require_triage(actor)
    keywords, exclusions = feeds.clean_terms(body.keywords), feeds.clean_terms(body.exclusions)
    if not keywords:
        raise M.error("keywords", M.KEYWORDS_REQUIRED)
    deal_id, account = _account(body.deal_id)
    rule = KeywordRule(id=new_id(), deal_id=deal_id, account=account, keywords=keywords, exclusions=exclusions,
                       created_at=clock.now(), created_by=actor.login)
    session.add(rule)
    await session.flush()
    return rule


async def list_rules(session: AsyncSession, actor: Actor, deal_id: str | None = None) -> list[KeywordRule]:
    require_triage(actor)
    query = select(KeywordRule).order_by(KeywordRule.account, KeywordRule.created_at, KeywordRule.id)
    if deal_id:
        query = query.where(KeywordRule.account == deal_id)
    return list((await session.execute(query)).scalars())


async def delete_rule(session: AsyncSession, actor: Actor, rule_id: str) -> None:
    require_triage(actor)
    rule = await session.get(KeywordRule, rule_id)
    if rule is None:
        raise M.refusal(NotFound, None, M.KEYWORD_RULE_NOT_FOUND)
    await session.delete(rule)


async def rules_of(session: AsyncSession, account: str) -> list[tuple[list[str], list[str]]]:
    rows = await session.execute(select(KeywordRule.keywords, KeywordRule.exclusions)
                                 .where(KeywordRule.account == account))
    return [(list(k or []), list(x or [])) for k, x in rows]


# ---------------------------------------------------------------- mentions

def mention_out(m: Mention) -> dict[str, Any]:
    return {"id": m.id, "status": m.status, "source_id": m.source_id, "source_name": m.source_name,
            "deal_id": m.deal_id, "account": m.account, "url": m.url, "title": m.title, "text": m.text,
            "author": m.author, "published_at": m.published_at, "matched": m.matched, "manual": m.source_id is None,
            "created_at": m.created_at, "created_by": m.created_by, "dismiss_reason": m.dismiss_reason,
            "dismiss_note": m.dismiss_note, "conversation_id": m.conversation_id, "triaged_by": m.triaged_by,
            "triaged_at": m.triaged_at}


def _search(title: str, text: str, author: str, source_name: str, url: str) -> str:
    return " ".join((title, text, author, source_name, url)).casefold()[:8000]


def _event(m: Mention) -> MentionReceived:
    return MentionReceived(mention_id=m.id, account=m.account, source_id=m.source_id, source_name=m.source_name,
                           url=m.url, title=m.title, text=m.text[:4000], author=m.author,
                           published_at=m.published_at, matched=list(m.matched or []), manual=m.source_id is None,
                           deal_id=m.deal_id, occurred_at=m.created_at)


async def add_manual(session: AsyncSession, actor: Actor, body: MentionIn, clock: Clock) -> Mention:
    """A mention staff found themselves. Not deduplicated: the same URL may be entered for two accounts, or
    twice on purpose (a thread that flared up again); the triage's "duplicate" reason is for the rest."""
    require_triage(actor)
    url, text, source_name = _clean(body.url), _clean(body.text), " ".join(_clean(body.source_name).split())
    errors = []
    if not feeds.valid_url(url):
        errors.append(M.item("url", M.URL_FORMAT))
    if not text:
        errors.append(M.item("text", M.REQUIRED))
    if not source_name:
        errors.append(M.item("source_name", M.REQUIRED))
    if errors:
        raise DomainError("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)
    deal_id, account = _account(body.deal_id)
    now = clock.now()
    mention_id = new_id()
    title, author = " ".join(_clean(body.title).split())[:1000], " ".join(_clean(body.author).split())[:300]
    m = Mention(id=mention_id, source_id=None, source_key=f"manual:{mention_id}", entry_key=url[:500],
                source_name=source_name[:200], deal_id=deal_id, account=account, url=url[:2000], title=title,
                text=text[:20000], author=author, published_at=None, matched=[],
                raw={"url": url, "text": text, "author": author, "title": title, "source_name": source_name},
                status="new", search_text=_search(title, text, author, source_name, url), created_at=now,
                created_by=actor.login)
    session.add(m)
    await session.flush()
    add_event(session, _event(m), clock=clock)
    return m


async def list_mentions(session: AsyncSession, actor: Actor, *, status: str | None, deal_id: str | None,
                        q: str | None, limit: int, offset: int) -> tuple[list[Mention], int]:
    """Newest first (by when we found it)."""
    require_triage(actor)
    if not 0 <= offset <= MAX_OFFSET:
        raise M.error("offset", M.OFFSET_BETWEEN, max=MAX_OFFSET)
    conditions: list[Any] = []
    if status:
        if status not in STATUSES:
            raise M.error("status", M.MENTION_STATUS_FILTER, choices=", ".join(STATUSES))
        conditions.append(Mention.status == status)
    if deal_id:
        conditions.append(Mention.account == deal_id)
    if q and _clean(q):
        conditions.append(Mention.search_text.contains(_clean(q).casefold(), autoescape=True))
    total = (await session.execute(select(func.count()).select_from(Mention).where(*conditions))).scalar_one()
    rows = list((await session.execute(select(Mention).where(*conditions)
                                       .order_by(Mention.created_at.desc(), Mention.id.desc())
                                       .limit(limit).offset(offset))).scalars())
    return rows, total


async def get_mention(session: AsyncSession, actor: Actor, mention_id: str) -> Mention:
    require_triage(actor)
    m = await session.get(Mention, mention_id)
    if m is None:
        raise M.refusal(NotFound, None, M.MENTION_NOT_FOUND)
    return m


async def summary(session: AsyncSession, actor: Actor) -> dict[str, Any]:
    """The monitoring dashboard: new mentions per client account, and the sources whose feed fails."""
    require_triage(actor)
    rows = await session.execute(select(Mention.account, Mention.deal_id, func.count())
                                 .where(Mention.status == "new").group_by(Mention.account, Mention.deal_id))
    per = sorted(({"account": a, "deal_id": d, "count": n} for a, d, n in rows), key=lambda r: (-r["count"],
                                                                                                r["account"]))
    failing = await list_sources(session, actor, failing=True)
    return {"new_total": sum(r["count"] for r in per), "new_by_account": per,
            "failing_sources": [source_out(s) for s in failing]}


def _must_be_new(m: Mention) -> None:
    if m.status != "new":
        raise M.refusal(Conflict, "status", M.MENTION_STATE, status=m.status)


async def _channel_for(session: AsyncSession, m: Mention, settings: Any, actor: Actor, now: datetime) -> Channel:
    if m.source_id is not None:
        source = await session.get(MonitoringSource, m.source_id)
        if source is not None and (channel := await session.get(Channel, source.channel_id)) is not None:
            return channel
    external = f"{MANUAL_CHANNEL}:{m.account}"
    channel = (await session.execute(select(Channel).where(Channel.kind == KIND, Channel.external_id == external)
                                     .order_by(Channel.created_at).limit(1))).scalar_one_or_none()
    if channel is None:
        channel = await _new_channel(session, settings, name="Mentions entered by hand", deal_id=m.deal_id,
                                     account=m.account, external_id=external, actor=actor.login, now=now)
    return channel


def conversation_text(m: Mention) -> str:
    """The customer message of a converted mention: its title, its text and its address (shown, not followed)."""
    return "\n\n".join(part for part in (m.title, m.text, m.url) if part)


async def convert(session: AsyncSession, actor: Actor, mention_id: str, *, settings: Any, clock: Clock) -> Mention:
    m = await get_mention(session, actor, mention_id)
    _must_be_new(m)
    now = clock.now()
    channel = await _channel_for(session, m, settings, actor, now)
    item = Inbound(thread_kind=THREAD, thread_key=f"mention:{m.id}", external_id=f"mention:{m.id}",
                   text=conversation_text(m), at=now, author=m.author or m.source_name,
                   customer_name=m.author or m.source_name, customer_handle=m.source_name,
                   reply_target={"url": m.url, "source_name": m.source_name}, raw={"mention": m.raw})
    message = await record_inbound(session, channel, item, clock)
    if message is None:
        raise M.refusal(Conflict, "status", M.MENTION_CONVERTED)
    m.status, m.conversation_id, m.triaged_by, m.triaged_at = "converted", message.conversation_id, actor.login, now
    await session.flush()
    return m


async def dismiss(session: AsyncSession, actor: Actor, mention_id: str, body: DismissIn, clock: Clock) -> Mention:
    m = await get_mention(session, actor, mention_id)
    note = _clean(body.note)
    if body.reason not in DISMISS_REASONS:
        raise M.error("reason", M.DISMISS_REASON, reasons=", ".join(DISMISS_REASONS))
    if body.reason == "other" and not note:
        raise M.error("note", M.DISMISS_NOTE)
    _must_be_new(m)
    m.status, m.dismiss_reason, m.dismiss_note = "dismissed", body.reason, note[:1000] or None
    m.triaged_by, m.triaged_at = actor.login, clock.now()
    return m


# ---------------------------------------------------------------- the poller

async def store_entries(session: AsyncSession, source: MonitoringSource, entries: list[feeds.Entry],
                        clock: Clock) -> int:
    """The entries that match the account's rules become mentions (once per entry); how many were new."""
    if not entries:
        return 0
    rules = await rules_of(session, source.account)
    if not rules:
        return 0
    source_key = source.id
    keys = list({e.key for e in entries})
    existing: set[str] = set()
    for i in range(0, len(keys), 500):
        existing |= set((await session.execute(select(Mention.entry_key).where(
            Mention.source_key == source_key, Mention.entry_key.in_(keys[i:i + 500])))).scalars())
    now = clock.now()
    stored = 0
    for entry in entries:
        if entry.key in existing:
            continue
        hits = feeds.matches(rules, f"{entry.title}\n{entry.text}")
        if not hits:
            continue
        existing.add(entry.key)
        m = Mention(id=new_id(), source_id=source.id, source_key=source_key, entry_key=entry.key,
                    source_name=source.name, deal_id=source.deal_id, account=source.account, url=entry.url,
                    title=entry.title, text=entry.text, author=entry.author, published_at=entry.published_at,
                    matched=hits, raw=entry.raw, status="new",
                    search_text=_search(entry.title, entry.text, entry.author, source.name, entry.url),
                    created_at=now, created_by="monitoring")
        try:
            async with session.begin_nested():
                session.add(m)
        except IntegrityError:   # another poller stored it a moment ago
            continue
        add_event(session, _event(m), clock=clock)
        stored += 1
    return stored


class FeedPoller(WakeableLoop):
    """Polls the due sources (`poll_due`), a batch at a time; each claims its source by moving `next_poll_at`
    (FOR UPDATE SKIP LOCKED on PostgreSQL), so replicas never poll one feed twice at once."""

    def __init__(self, db: Database, clock: Clock, *, timeout: float = 20.0, batch: int = 20,
                 poll_seconds: float = 10.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(poll_seconds)
        self.db, self.clock, self.batch = db, clock, batch
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=True, transport=transport)

    async def close(self) -> None:
        await self._client.aclose()

    async def claim(self) -> list[tuple[str, str, str | None, str | None, int]]:
        now = self.clock.now()
        async with self.db.transaction() as session:
            query = (select(MonitoringSource).where(MonitoringSource.active.is_(True),
                                                    MonitoringSource.next_poll_at <= now)
                     .order_by(MonitoringSource.next_poll_at, MonitoringSource.id).limit(self.batch))
            sources = list((await session.execute(skip_locked(query, self.db))).scalars())
            for s in sources:   # claimed until its poll ends (a crash mid-poll tries again an interval later)
                s.next_poll_at = now + timedelta(seconds=s.interval_seconds)
            return [(s.id, s.url, s.etag, s.last_modified, s.interval_seconds) for s in sources]

    async def poll_one(self, source_id: str, url: str, etag: str | None, last_modified: str | None) -> int:
        try:
            result: feeds.FetchResult | feeds.FeedError = await feeds.fetch(self._client, url, etag, last_modified)
        except feeds.FeedError as exc:
            result = exc
        except Exception as exc:   # a feed that breaks the parser is that feed's problem, not the loop's
            result = feeds.FeedError(f"cannot read the feed: {type(exc).__name__}: {exc}")
        now = self.clock.now()
        try:
            async with self.db.transaction() as session:
                source = await session.get(MonitoringSource, source_id)
                if source is None or not source.active:
                    return 0
                source.last_polled_at = now
                if isinstance(result, feeds.FeedError):
                    source.failures = (source.failures or 0) + 1
                    source.error = str(result)[:1000]
                    source.next_poll_at = now + timedelta(
                        seconds=feeds.retry_seconds(source.failures, source.interval_seconds))
                    return 0
                stored = 0 if result.not_modified else await store_entries(session, source, result.entries,
                                                                           self.clock)
                source.etag, source.last_modified = result.etag, result.last_modified
                source.failures, source.error, source.last_ok_at = 0, None, now
                source.next_poll_at = now + timedelta(seconds=source.interval_seconds)
                return stored
        except Exception as exc:   # storing failed (a database error, a value it refused): keep it on the source
            log.warning("monitoring source %s: %s", source_id, exc)
            async with self.db.transaction() as session:
                source = await session.get(MonitoringSource, source_id)
                if source is not None:
                    source.failures = (source.failures or 0) + 1
                    source.error = f"cannot store the entries: {type(exc).__name__}"[:1000]
                    source.next_poll_at = now + timedelta(
                        seconds=feeds.retry_seconds(source.failures, source.interval_seconds))
            return 0

    async def poll_due(self) -> int:
        """Poll every due source; how many mentions were stored."""
        stored = 0
        while claimed := await self.claim():
            for source_id, url, etag, last_modified, _interval in claimed:
                stored += await self.poll_one(source_id, url, etag, last_modified)
            if len(claimed) < self.batch:
                break
        return stored

    async def run(self) -> None:
        while not self._stopping:
            await self.poll_due()   # a database outage raises: the supervisor restarts us and readiness says so
            await self.nap()

