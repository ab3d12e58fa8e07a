"""Set-based processing of a batch of webhook deliveries (issue 11: webhook → visible p99 ≤ 1 s at 200 messages/s).

`DeliveryProcessor` claims up to 50 deliveries at a time. Telegram, VK and Instagram deliveries that carry
customer messages ("plain" ones) are processed together here, in a few queries whatever their number:
the threads taken for the transaction (PostgreSQL advisory locks in one order: lanes with messages of one
thread take turns, so it gets one conversation and its `seq` keeps the order of arrival); the channels; the
messages already stored (dedupe: one message per channel and external id, however often and under whatever
update id it comes); the conversations of the threads; the last `seq` and the
tags of each; the tag rules; the care agents who may be given a new conversation and their open counts. Then
each message is taken in delivery order with the same rules as the one-by-one path (`inbound.new_conversation`,
`inbound.take_inbound`, `rules.pick_round_robin`, `rules.matching_tags`), everything is written in one flush,
the response clocks are refreshed once per conversation (`quality.refresh_many`), and the events go to the
outbox with the transaction.

Everything else — e-mail, website forms, Telegram membership and migration updates and VK chat membership (issue
13), a kicked bot — goes one by one through `inbound.process_delivery`, in its place in the batch. A run of plain deliveries is
done in one savepoint; if it fails (a database error, a conversation another lane made meanwhile, a deadlock),
the savepoint is undone and the run goes one by one, so a delivery that fails is retried with backoff on its
own and the rest of the batch is kept. A delivery whose body cannot be read fails on its own at once.

Choice: the events of a batch are written in a different interleaving than one by one would (each message's
`engagement.message.received.v1` and `sales_dialog_started` first, then the deadline events of the refreshed
clocks); the events of one subject keep their order.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from shared.clock import Clock
from shared.outbox import add_event
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import files, quality, rules, sales
from engagement.channels import Inbound, instagram, telegram, vk
from engagement.models import (
    Agent,
    Channel,
    Conversation,
    ConversationTag,
    Delivery,
    Message,
    StaffAccount,
    TagRule,
    new_id,
)

PLAIN_KINDS = ("telegram", "vk", "instagram")


def is_plain(delivery: Delivery, body: dict[str, Any]) -> bool:
    """Customer messages only: no e-mail, form, Telegram membership / migration / kicked update or VK chat
    membership."""
    if delivery.kind not in PLAIN_KINDS:
        return False
    if delivery.kind == "telegram":
        return (telegram.bot_member_change(body) is None and telegram.migration_of(body) is None
                and telegram.kicked_from(body) is None)
    if delivery.kind == "vk":
        return vk.bot_member_change(body) is None
    return True


@dataclass
class Parsed:
    delivery: Delivery
    items: list[tuple[Channel, Inbound]] = field(default_factory=list)
    stored: int = 0
    unknown: list[str] = field(default_factory=list)
    gone: bool = False

    def outcome(self) -> str:
        if self.gone:
            return "channel gone"
        return f"{self.stored} stored" + (f"; no channel for entry {', '.join(self.unknown)}" if self.unknown else "")


async def read_channels(session: AsyncSession, bodies: list[tuple[Delivery, dict[str, Any]]]
                        ) -> tuple[dict[str, Channel], dict[str, Channel]]:
    """The channels of the batch: by id (Telegram, VK) and the active Instagram ones by account id."""
    ids = {d.channel_id for d, _ in bodies if d.kind != "instagram" and d.channel_id}
    ig_ids = {str(e.get("id")) for d, b in bodies if d.kind == "instagram" for e in _entries(b)}
    by_id = {c.id: c for c in (await session.execute(select(Channel).where(Channel.id.in_(ids)))).scalars()} \
        if ids else {}
    by_ig = {c.external_id: c for c in (await session.execute(select(Channel).where(
        Channel.kind == "instagram", Channel.external_id.in_(ig_ids), Channel.active.is_(True)))).scalars()} \
        if ig_ids else {}
    return by_id, by_ig


def _entries(body: dict[str, Any]) -> list[dict[str, Any]]:
    entries = body.get("entry") or []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def parse(delivery: Delivery, body: dict[str, Any], by_id: dict[str, Channel], by_ig: dict[str, Channel],
          now: Any) -> Parsed:
    """The customer messages of one plain delivery, as `process_delivery` would read them (a body it cannot
    read raises, as there: the delivery fails on its own and is retried with backoff)."""
    parsed = Parsed(delivery)
    if delivery.kind == "instagram":
        for entry in body.get("entry") or []:
            channel = by_ig.get(str(entry.get("id")))
            if channel is None:
                parsed.unknown.append(str(entry.get("id")))
                continue
            parsed.items += [(channel, item) for item in instagram.parse_entry(entry, now)]
        return parsed
    channel = by_id.get(delivery.channel_id or "")
    if channel is None:
        parsed.gone = True
        return parsed
    items = telegram.parse_update(body, now) if delivery.kind == "telegram" else vk.parse_event(body, now)
    parsed.items = [(channel, item) for item in items]
    return parsed


class Assigner:
    """Round-robin auto-assignment (engagement.assignment) for the new conversations of a batch: the agents
    serving their accounts and their open counts read once, kept current as the batch assigns and reopens."""

    def __init__(self, agents: dict[str, list[Agent]], counts: dict[str, int]) -> None:
        self.agents, self.counts = agents, counts

    @classmethod
    async def read(cls, session: AsyncSession, accounts: set[str]) -> Assigner:
        agents: dict[str, list[Agent]] = defaultdict(list)
        if accounts:
            for agent, account in (await session.execute(
                    select(Agent, StaffAccount.account).join(StaffAccount, StaffAccount.login == Agent.login)
                    .where(StaffAccount.account.in_(sorted(accounts)), Agent.on_shift.is_(True)))).all():
                agents[account].append(agent)
        logins = sorted({a.login for rows in agents.values() for a in rows})
        counts = dict((await session.execute(
            select(Conversation.assignee, func.count()).where(Conversation.assignee.in_(logins),
                                                              Conversation.status == rules.OPEN)
            .group_by(Conversation.assignee))).all()) if logins else {}
        return cls(agents, counts)

    def assign(self, conversation: Conversation, now: Any) -> None:
        rows = self.agents.get(conversation.account) or []
        chosen = rules.pick_round_robin([(a.login, self.counts.get(a.login, 0), a.cap if a.cap is not None
                                          else rules.DEFAULT_OPEN_CAP, a.last_assigned_at) for a in rows])
        if chosen is not None:
            conversation.assignee = chosen
            next(a for a in rows if a.login == chosen).last_assigned_at = now

    def opened(self, conversation: Conversation) -> None:
        """A conversation became open (new, or a customer's message reopened it): its agent has one more."""
        if conversation.assignee is not None:
            self.counts[conversation.assignee] = self.counts.get(conversation.assignee, 0) + 1


async def process_plain(session: AsyncSession, run: list[Parsed], clock: Clock) -> None:
    """The customer messages of a run of plain deliveries, in order (see the module docstring); sets each
    `Parsed.stored`. Raises on any database error: the caller undoes the run and goes one by one."""
    from engagement.inbound import new_conversation, received_event, take_inbound

    pairs = [(channel, item) for p in run for channel, item in p.items]
    if not pairs:
        return
    await _lock_threads(session, {(c.id, i.thread_key) for c, i in pairs})
    channel_ids = sorted({c.id for c, _ in pairs})
    seen = set((await session.execute(select(Message.channel_id, Message.external_id).where(
        Message.channel_id.in_(channel_ids), Message.direction == "in",
        Message.external_id.in_(sorted({i.external_id for _, i in pairs}))))).tuples())
    threads = {(c.id, i.thread_key) for c, i in pairs if (c.id, i.external_id) not in seen}
    conversations = await _conversations(session, channel_ids, threads)
    ids = [c.id for c in conversations.values()]
    seqs = dict((await session.execute(select(Message.conversation_id, func.max(Message.seq))
                                       .where(Message.conversation_id.in_(ids))
                                       .group_by(Message.conversation_id))).all()) if ids else {}
    have: dict[str, set[str]] = defaultdict(set)
    if ids:
        for cid, tag in (await session.execute(select(ConversationTag.conversation_id, ConversationTag.tag)
                                               .where(ConversationTag.conversation_id.in_(ids)))).tuples():
            have[cid].add(tag)
    tag_rules = [tuple(r) for r in (await session.execute(select(TagRule.kind, TagRule.value, TagRule.tag))).all()]
    new_accounts = {c.account for c, i in pairs if (c.id, i.thread_key) not in conversations}
    assigner = await Assigner.read(session, new_accounts) if new_accounts else Assigner({}, {})
    touched: dict[str, Conversation] = {}
    for p in run:
        for channel, item in p.items:
            if (channel.id, item.external_id) in seen:
                continue
            seen.add((channel.id, item.external_id))
            now = clock.now()
            conversation = conversations.get((channel.id, item.thread_key))
            new = conversation is None
            if conversation is None:
                conversation = conversations[(channel.id, item.thread_key)] = new_conversation(channel, item, now)
                session.add(conversation)
                assigner.assign(conversation, now)
                assigner.opened(conversation)
            reopened = not new and conversation.status == rules.RESOLVED
            was_open = conversation.status == rules.OPEN
            seqs[conversation.id] = seqs.get(conversation.id, 0) + 1
            message = Message(id=new_id(), conversation_id=conversation.id, channel_id=channel.id, direction="in",
                              seq=seqs[conversation.id], text=item.text, at=item.at, author=item.author,
                              external_id=item.external_id, raw=item.raw, created_at=now)
            session.add(message)
            files.add_for(session, message, item, now)   # the files it carries, beside it
            take_inbound(conversation, item)
            if not new and not was_open and conversation.status == rules.OPEN:
                assigner.opened(conversation)
            tags = rules.matching_tags(tag_rules, text=item.text, channel_kind=channel.kind,
                                       account=channel.account, campaign=item.campaign) if tag_rules else set()
            for tag in sorted(tags - have[conversation.id]):
                session.add(ConversationTag(conversation_id=conversation.id, tag=tag))
                have[conversation.id].add(tag)
            add_event(session, received_event(channel, conversation, message, item, reopened), clock=clock)
            if new:
                sales.dialog_started(session, channel, conversation, message, item, clock)
            touched[conversation.id] = conversation
            p.stored += 1
    await session.flush()
    await quality.refresh_many(session, list(touched.values()), clock)  # EN-3: once per conversation


LOCK_THREADS = text("SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT k FROM unnest(CAST(:keys AS bigint[])) "
                    "AS t(k) ORDER BY k) AS s")


async def _lock_threads(session: AsyncSession, threads: set[tuple[str, str]]) -> None:
    """PostgreSQL: take the batch's threads (channel, thread key) — existing or not yet — for this transaction,
    all in one order. Two lanes (or replicas) with messages of one thread take turns, the second seeing what
    the first committed: no two conversations made for one thread, no message numbered twice, no deadlock."""
    if session.bind.dialect.name != "postgresql":
        return   # SQLite: one writer at a time already
    keys = sorted({int.from_bytes(hashlib.blake2b(f"{c}\x1f{t}".encode(), digest_size=8).digest(), "big",
                                  signed=True) for c, t in threads})
    await session.execute(LOCK_THREADS, {"keys": keys})


async def _conversations(session: AsyncSession, channel_ids: list[str],
                         threads: set[tuple[str, str]]) -> dict[tuple[str, str], Conversation]:
    """The existing conversations of the batch's threads (taken already: `_lock_threads`)."""
    if not threads:
        return {}
    query = (select(Conversation).where(Conversation.channel_id.in_(channel_ids),
                                        Conversation.thread_key.in_(sorted({t for _, t in threads})))
             .order_by(Conversation.id))
    rows = (await session.execute(query)).scalars()
    return {(c.channel_id, c.thread_key): c for c in rows if (c.channel_id, c.thread_key) in threads}
