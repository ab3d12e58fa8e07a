"""Inbound webhooks (issue 11): verify → store the raw delivery durably → answer at once → process after.

- `GET /webhooks/instagram`: Meta's `hub.challenge` handshake with `META_VERIFY_TOKEN`.
- `POST /webhooks/instagram`: `X-Hub-Signature-256` over the raw body with `META_APP_SECRET` (missing → 401,
  wrong → 403, nothing stored); entries are routed to a channel by `entry.id` (the ig_user_id) when processed.
- `POST /webhooks/telegram/{channel_id}`: `X-Telegram-Bot-Api-Secret-Token`; dedupe on `update_id`.
- `POST /webhooks/vk/{channel_id}`: body `secret`; `confirmation` answered with the account's string; `ok`;
  dedupe on `event_id`.

The `Delivery` row is the processing state, written by one `INSERT … ON CONFLICT DO NOTHING` on the dedupe key
in a short transaction of its own before the answer: `DeliveryProcessor` (a background loop, woken right after
that commit, polling every second otherwise) turns it into conversations and messages, a batch at a time
set-based (engagement.inbound_batch); a message is unique per channel and external id, so a
redelivery Meta sends with another body still has one effect.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath
from shared.clock import Clock
from shared.db import Database, skip_locked
from shared.events.engagement import MessageReceived
from shared.loop import WakeableLoop
from shared.outbox import add_event
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import files, inbound_batch, quality, rules, sales
from engagement.assignment import auto_assign
from engagement.channels import Inbound, instagram, telegram, vk
from engagement.crypto import decrypt_secrets, matches_digest
from engagement.ingest import DeliveryWriter, StoreFailed
from engagement.models import Channel, Conversation, ConversationTag, Delivery, Message, TagRule, new_id
from engagement.services import next_seq, search_text

log = logging.getLogger(__name__)
TEXT = "text/plain"


def _text(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=TEXT)


def delivery_writer(state: Any) -> DeliveryWriter:
    """The process's group-commit writer of delivery rows (engagement.ingest), made on first use."""
    runtime = state.runtime
    writer = runtime.state.get("delivery_writer")
    if writer is None:
        def wake() -> None:
            if (processor := runtime.state.get("processor")) is not None:
                processor.wake()

        writer = runtime.state["delivery_writer"] = DeliveryWriter(runtime.db, runtime.clock, on_new=wake)
    return writer


async def store_delivery(state: Any, *, kind: str, channel_id: str | None, dedupe_key: str, body: bytes) -> bool:
    """Store the raw delivery once (a redelivery is a no-op) and return when it is committed — in a batch with
    the deliveries arriving beside it (group commit) — waking the processor. Returns whether it was new; raises
    StoreFailed if its batch could not be committed."""
    return await delivery_writer(state).store(kind=kind, channel_id=channel_id, dedupe_key=dedupe_key, body=body)


class ChannelCache:
    """What the webhook check needs of a channel (kind, webhook secret digest, VK group id), kept for a few
    seconds so the hot path reads nothing but the request."""

    TTL = 10.0

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, tuple[str, str | None, str] | None]] = {}

    async def get(self, state: Any, channel_id: str, kind: str) -> tuple[str, str | None, str] | None:
        now = time.monotonic()
        hit = self._items.get(channel_id)
        if hit is None or now - hit[0] > self.TTL:
            async with state.runtime.db.sessionmaker() as session:
                channel = await session.get(Channel, channel_id)
                value = (channel.kind, channel.webhook_secret_digest, str(channel.config.get("group_id", ""))) \
                    if channel is not None and channel.active else None
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[channel_id] = hit = (now, value)
        value = hit[1]
        return value if value is not None and value[0] == kind else None


def _json(raw: bytes) -> dict[str, Any] | None:
    try:
        data = msgspec.json.decode(raw)
    except (msgspec.DecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@get("/webhooks/instagram", sync_to_thread=False, include_in_schema=False)
def instagram_handshake(request: Request) -> Response:
    settings = request.app.state.channels
    params = request.query_params
    token = params.get("hub.verify_token") or ""
    if (params.get("hub.mode") == "subscribe" and settings.meta_verify_token
            and hmac.compare_digest(token.encode(), settings.meta_verify_token.encode())):
        return _text(params.get("hub.challenge") or "")
    return _text("verify token mismatch", 403)


# The answers of the webhook POSTs, shared by the Litestar routes below and the plain-ASGI front
# (engagement.ingest.WebhookFront): (app state, channel id, header lookup by lower-case name, raw body) →
# (status, text body).

NOT_STORED = (503, "not stored, try again")


async def _stored(state: Any, kind: str, channel_id: str | None, key: str, raw: bytes, ok: str) -> tuple[int, str]:
    try:
        await store_delivery(state, kind=kind, channel_id=channel_id, dedupe_key=key, body=raw)
    except StoreFailed:
        return NOT_STORED
    return 200, ok


async def instagram_answer(state: Any, _channel_id: str | None, header: Callable[[str], str | None],
                           raw: bytes) -> tuple[int, str]:
    signature = header("x-hub-signature-256")
    if not signature:
        return 401, "missing X-Hub-Signature-256"
    if not rules.meta_signature_valid(state.channels.meta_app_secret, raw, signature):
        return 403, "bad signature"
    return await _stored(state, "instagram", None, "instagram:" + hashlib.sha256(raw).hexdigest(), raw,
                         "EVENT_RECEIVED")


async def telegram_answer(state: Any, channel_id: str | None, header: Callable[[str], str | None],
                          raw: bytes) -> tuple[int, str]:
    channel = await state.channel_cache.get(state, channel_id, "telegram")
    if channel is None:
        return 404, "unknown channel"
    token = header("x-telegram-bot-api-secret-token")
    if not token:
        return 401, "missing X-Telegram-Bot-Api-Secret-Token"
    if not matches_digest(token, channel[1]):
        return 403, "bad secret token"
    update = _json(raw)
    if update is None or not isinstance(update.get("update_id"), int):
        return 400, "update_id missing"
    return await _stored(state, "telegram", channel_id, f"telegram:{channel_id}:{update['update_id']}", raw, "ok")


async def vk_answer(state: Any, channel_id: str | None, _header: Callable[[str], str | None],
                    raw: bytes) -> tuple[int, str]:
    channel = await state.channel_cache.get(state, channel_id, "vk")
    if channel is None:
        return 404, "unknown channel"
    body = _json(raw)
    if body is None:
        return 400, "invalid JSON"
    if not matches_digest(str(body.get("secret") or ""), channel[1]):
        return 403, "bad secret"
    if body.get("type") == "confirmation":
        if str(body.get("group_id")) != channel[2]:
            return 403, "group_id does not match this channel"
        async with state.runtime.db.sessionmaker() as session:
            row = await session.get(Channel, channel_id)
        return 200, decrypt_secrets(state.settings, row.secrets)["confirmation"]
    event_id = body.get("event_id") or hashlib.sha256(raw).hexdigest()
    return await _stored(state, "vk", channel_id, f"vk:{channel_id}:{event_id}", raw, "ok")


@post("/webhooks/instagram", include_in_schema=False)
async def instagram_webhook(request: Request) -> Response:
    return _text(*reversed(await instagram_answer(request.app.state, None, request.headers.get,
                                                  await request.body())))


@post("/webhooks/telegram/{channel_id:str}", include_in_schema=False)
async def telegram_webhook(request: Request, channel_id: FromPath[str]) -> Response:
    return _text(*reversed(await telegram_answer(request.app.state, channel_id, request.headers.get,
                                                 await request.body())))


@post("/webhooks/vk/{channel_id:str}", include_in_schema=False)
async def vk_webhook(request: Request, channel_id: FromPath[str]) -> Response:
    return _text(*reversed(await vk_answer(request.app.state, channel_id, request.headers.get,
                                           await request.body())))


webhook_routes = [instagram_handshake, instagram_webhook, telegram_webhook, vk_webhook]


# ---------------------------------------------------------------- processing

async def record_inbound(session: AsyncSession, channel: Channel, item: Inbound, clock: Clock) -> Message | None:
    """One customer message into its conversation (created on the first one); None if already stored.
    (The processor's batches take the set-based path of engagement.inbound_batch, which shares the rules
    below: `new_conversation`, `take_inbound`.)"""
    now = clock.now()
    existing = (await session.execute(select(Message.id).where(
        Message.channel_id == channel.id, Message.direction == "in", Message.external_id == item.external_id))).first()
    if existing:
        return None
    conversation = (await session.execute(select(Conversation).where(
        Conversation.channel_id == channel.id, Conversation.thread_key == item.thread_key))).scalar_one_or_none()
    reopened = new = False
    created = conversation is None
    if conversation is None:
        new = True
        conversation = new_conversation(channel, item, now)
        try:
            async with session.begin_nested():
                session.add(conversation)
        except IntegrityError:   # another processor lane or replica made it meanwhile (committed): take it
            conversation = (await session.execute(select(Conversation).where(
                Conversation.channel_id == channel.id, Conversation.thread_key == item.thread_key))).scalar_one()
            created = new = False
            reopened = conversation.status == rules.RESOLVED
        else:
            await auto_assign(session, conversation, now)
    else:
        reopened = conversation.status == rules.RESOLVED
    message = Message(id=new_id(), conversation_id=conversation.id, channel_id=channel.id, direction="in",
                      seq=1 if created else await next_seq(session, conversation.id), text=item.text,
                      at=item.at, author=item.author, external_id=item.external_id, raw=item.raw, created_at=now)
    try:
        async with session.begin_nested():
            session.add(message)
    except IntegrityError:
        return None
    files.add_for(session, message, item, now)
    take_inbound(conversation, item)
    await apply_tag_rules(session, conversation, channel, item)
    await quality.refresh(session, conversation, clock)  # EN-3: this message may start (or revise) a clock
    add_event(session, received_event(channel, conversation, message, item, reopened), clock=clock)
    if new:
        sales.dialog_started(session, channel, conversation, message, item, clock)
    return message


def new_conversation(channel: Channel, item: Inbound, now: datetime) -> Conversation:
    return Conversation(
        id=new_id(), channel_id=channel.id, kind=channel.kind, thread_kind=item.thread_kind,
        thread_key=item.thread_key, account=channel.account, deal_id=channel.deal_id, status=rules.OPEN,
        created_at=now, last_activity_at=item.at, customer_name="", customer_handle="", reply_target={},
        last_text="", last_direction="in", search_text="", paused_seconds=0)


def take_inbound(conversation: Conversation, item: Inbound) -> None:
    """What a customer message does to its conversation (EN-2): reopens it, names the customer, is where a
    reply goes, and is its last message unless a later one is there already (a late, earlier-dated one)."""
    conversation.status = rules.status_after_inbound(conversation.status)
    if item.customer_name:
        conversation.customer_name = item.customer_name
    if item.customer_handle:
        conversation.customer_handle = item.customer_handle
    conversation.reply_target = item.reply_target
    if conversation.last_inbound_at is None or item.at >= conversation.last_inbound_at:
        conversation.last_inbound_at = item.at
    if conversation.waiting_since is None:
        conversation.waiting_since = item.at
    if item.at >= conversation.last_activity_at or conversation.last_direction == "out":
        conversation.last_text, conversation.last_direction = item.text or files_preview(item), "in"
        conversation.last_activity_at = max(item.at, conversation.last_activity_at)
    conversation.search_text = search_text(conversation)


def files_preview(item: Inbound) -> str:
    """The list's preview of a message of files only (a photo without a caption): their names, not an empty
    line (names need no translation)."""
    return ("📎 " + ", ".join(f.name for f in item.attachments))[:300] if item.attachments else ""


def received_event(channel: Channel, conversation: Conversation, message: Message, item: Inbound,
                   reopened: bool) -> MessageReceived:
    return MessageReceived(
        message_id=message.id, conversation_id=conversation.id, channel_id=channel.id, channel_kind=channel.kind,
        thread_kind=item.thread_kind, account=channel.account, received_at=item.at, text=item.text,
        customer_handle=item.customer_handle, reopened=reopened, deal_id=channel.deal_id)


TAG_RULES_OF_BATCH = "engagement.tag_rules"


async def apply_tag_rules(session: AsyncSession, conversation: Conversation, channel: Channel,
                          item: Inbound) -> None:
    rows = session.info.get(TAG_RULES_OF_BATCH)   # the processor reads the rules once per batch
    if rows is None:
        rows = (await session.execute(select(TagRule.kind, TagRule.value, TagRule.tag))).all()
        if TAG_RULES_OF_BATCH in session.info:
            session.info[TAG_RULES_OF_BATCH] = rows
    if not rows:
        return
    tags = rules.matching_tags([tuple(r) for r in rows], text=item.text, channel_kind=channel.kind,
                               account=channel.account, campaign=item.campaign)
    have = set((await session.execute(select(ConversationTag.tag).where(
        ConversationTag.conversation_id == conversation.id))).scalars())
    for tag in sorted(tags - have):
        session.add(ConversationTag(conversation_id=conversation.id, tag=tag))


async def process_delivery(session: AsyncSession, delivery: Delivery, clock: Clock) -> str:
    body = _json(delivery.body) or {}
    now = clock.now()
    stored = 0
    if delivery.kind == "instagram":
        unknown = []
        for entry in body.get("entry") or []:
            channel = (await session.execute(select(Channel).where(
                Channel.kind == "instagram", Channel.external_id == str(entry.get("id")),
                Channel.active.is_(True)))).scalar_one_or_none()
            if channel is None:
                unknown.append(str(entry.get("id")))
                continue
            for item in instagram.parse_entry(entry, now):
                stored += await record_inbound(session, channel, item, clock) is not None
        return f"{stored} stored" + (f"; no channel for entry {', '.join(unknown)}" if unknown else "")
    channel = await session.get(Channel, delivery.channel_id)
    if channel is None:
        return "channel gone"
    if delivery.kind == "email":
        from engagement.mailbox import process_mail

        return await process_mail(session, channel, delivery.body, clock)
    if delivery.kind == "webform":
        from engagement.webform import process_submission

        return await process_submission(session, channel, delivery.body, clock)
    if delivery.kind == "telegram":
        groups = await _telegram_groups(session, channel, body, clock)  # issue 13: the SOP's groups
        kicked = telegram.kicked_from(body)
        if kicked is not None:
            conversation = (await session.execute(select(Conversation).where(
                Conversation.channel_id == channel.id, Conversation.thread_key == f"chat:{kicked[0]}"))).scalar_one_or_none()
            if conversation is not None:
                conversation.unreachable = kicked[1]
            return kicked[1]
        if groups:
            return groups
        items = telegram.parse_update(body, now)
    else:
        member = vk.bot_member_change(body)
        if member is not None:   # issue 13 (EN-8): the community added to a chat makes it a group of the SOP
            from engagement import sop_groups

            return await sop_groups.vk_membership(session, channel, member[0], member[1], clock)
        items = vk.parse_event(body, now)
    for item in items:
        stored += await record_inbound(session, channel, item, clock) is not None
    return f"{stored} stored"


async def _telegram_groups(session: AsyncSession, channel: Channel, body: dict[str, Any], clock: Clock) -> str:
    """Issue 13 (EN-8): the bot added to a group makes it a group of the SOP, removed makes it inactive; a group
    upgraded to a supergroup (`migrate_to_chat_id`) keeps its row under the new chat id. "" when not such an
    update (a member change is also the inbox's "unreachable" when the bot is kicked: the caller goes on)."""
    from engagement import sop_groups

    member = telegram.bot_member_change(body)
    if member is not None:
        outcome = await sop_groups.bot_membership(session, channel, member[0], member[1], clock)
        return "" if member[1] in ("kicked", "left") else outcome
    migration = telegram.migration_of(body)
    if migration is not None:
        moved = await sop_groups.migrate_chat(session, channel.id, migration[0], migration[1], clock)
        return f"group {migration[0]} migrated to {migration[1]}" if moved else "migration: no such group"
    return ""


class DeliveryProcessor(WakeableLoop):
    """Turns stored deliveries into messages. A delivery that fails to process is retried with backoff; its
    savepoint undoes a half-done delivery."""

    def __init__(self, db: Database, clock: Clock, batch: int = 200, poll_seconds: float = 1.0,
                 lanes: int = 2) -> None:
        super().__init__(poll_seconds)
        self.db, self.clock, self.batch = db, clock, batch
        self.set_based = True   # False: every delivery one by one (the reference path the batch must match)
        self.fallbacks = 0      # runs that went one by one (for the benchmark and the logs)
        # PostgreSQL: `lanes` batches at once, each its own transaction claiming other rows (SKIP LOCKED), so a
        # backlog is worked off while each lane waits on the database; SQLite has one writer: one lane. A batch
        # is set-based (engagement.inbound_batch), so a few lanes with large batches do best: at 200 webhooks/s
        # (bench/engagement_ingest.py --phase inbox, 2 cores) 2 × 200 beat 4 × 200, 1 × 200 and 4 × 50.
        self.lanes = lanes if db.dialect == "postgresql" else 1
        if db.dialect != "postgresql":   # SQLite: a batch holds the one write lock; webhooks wait behind it
            self.batch = min(batch, 10)

    async def process_batch(self) -> int:
        now = self.clock.now()
        async with self.db.transaction() as session:
            session.info[TAG_RULES_OF_BATCH] = None   # read once for the batch (a rule added meanwhile: next one)
            query = (select(Delivery).where(Delivery.processed_at.is_(None), Delivery.next_attempt_at <= now)
                     .order_by(Delivery.id).limit(self.batch))
            deliveries = list((await session.execute(skip_locked(query, self.db))).scalars())
            await self._process(session, deliveries, now)
        return len(deliveries)

    async def _process(self, session: AsyncSession, deliveries: list[Delivery], now: datetime) -> None:
        """Runs of plain deliveries set-based (engagement.inbound_batch), the others one by one in their place;
        a run that fails goes one by one."""
        bodies = [(d, _json(d.body) or {}) for d in deliveries]
        by_id, by_ig = await inbound_batch.read_channels(session, [(d, b) for d, b in bodies
                                                                   if inbound_batch.is_plain(d, b)])
        run: list[inbound_batch.Parsed] = []
        for delivery, body in [*bodies, (None, {})]:
            if delivery is not None and self.set_based and inbound_batch.is_plain(delivery, body):
                try:
                    run.append(inbound_batch.parse(delivery, body, by_id, by_ig, self.clock.now()))
                except Exception as exc:  # a body it cannot read: this one fails, retried with backoff
                    self._failed(delivery, now, exc)
                continue
            if run:
                await self._run(session, run, now)
                run = []
            if delivery is not None:
                await self._one(session, delivery, now)

    async def _run(self, session: AsyncSession, run: list[inbound_batch.Parsed], now: datetime) -> None:
        try:
            async with session.begin_nested():
                await inbound_batch.process_plain(session, run, self.clock)
        except Exception as exc:  # undone: one by one, so only a delivery that fails is retried
            self.fallbacks += 1
            log.warning("a run of %d deliveries goes one by one: %s", len(run), str(exc)[:300])
            for parsed in run:
                await self._one(session, parsed.delivery, now)
            return
        for parsed in run:
            parsed.delivery.outcome = parsed.outcome()[:500]
            parsed.delivery.processed_at = now

    async def _one(self, session: AsyncSession, delivery: Delivery, now: datetime) -> None:
        try:
            async with session.begin_nested():
                delivery.outcome = (await process_delivery(session, delivery, self.clock))[:500]
            delivery.processed_at = now
        except Exception as exc:  # keep the raw delivery; try again later
            self._failed(delivery, now, exc)

    @staticmethod
    def _failed(delivery: Delivery, now: datetime, exc: Exception) -> None:
        delivery.attempts += 1
        delivery.outcome = f"{type(exc).__name__}: {exc}"[:500]
        delivery.next_attempt_at = now + timedelta(seconds=rules.backoff_seconds(delivery.attempts))
        log.warning("delivery %s (%s) failed: %s", delivery.id, delivery.kind, exc)

    async def run_due(self) -> int:
        async def lane() -> int:
            total = 0
            while (n := await self.process_batch()) > 0:
                total += n
            return total

        if self.lanes == 1:
            return await lane()
        return sum(await asyncio.gather(*(lane() for _ in range(self.lanes))))

    async def run(self) -> None:
        while not self._stopping:
            await self.run_due()   # a database outage raises: the supervisor restarts us and readiness says so
            await self.nap()
