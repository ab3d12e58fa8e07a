"""Domain operations of the care inbox: channel accounts, conversations (EN-2), replies, staff↔accounts (EN-6)."""

from __future__ import annotations

import html
import secrets as secrets_module
from typing import Any

from shared.auth import Actor
from shared.clock import Clock
from shared.errors import Conflict, DomainError, NotFound
from shared.events.engagement import ConversationAnswered
from shared.outbox import add_event
from shared.settings import Settings
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import access, files, quality, rules
from engagement.crypto import digest, encrypt_secrets
from engagement.models import (
    AGENCY_ACCOUNT,
    Channel,
    Conversation,
    ConversationTag,
    MailboxState,
    Message,
    StaffAccount,
    TagRule,
    new_id,
)
from engagement.sales import is_sales_channel, lead_out
from engagement.schemas import ChannelIn
from shared import messages as M

OUTGOING_FLAG = "engagement.outgoing"
RECORDED_KIND = "monitoring"   # replies recorded by hand, not sent by us
MAX_TEXT = {"instagram": 1000, "telegram": 4096, "vk": 9000}


# ---------------------------------------------------------------- channel accounts

def webhook_url(public_url: str, channel: Channel) -> str | None:
    if channel.kind == "instagram":
        return f"{public_url}/webhooks/instagram"
    if channel.kind in ("telegram", "vk"):
        return f"{public_url}/webhooks/{channel.kind}/{channel.id}"
    return None


def channel_out(channel: Channel, public_url: str) -> dict[str, Any]:
    """A channel as answered: never a secret."""
    out: dict[str, Any] = {"id": channel.id, "kind": channel.kind, "name": channel.name, "deal_id": channel.deal_id,
                           "account": channel.account, "config": channel.config, "active": channel.active,
                           "sales": channel.sales}
    if (url := webhook_url(public_url, channel)) is not None:
        out["webhook_url"] = url
    if channel.kind == "webform":
        form = f"{public_url}/f/{channel.external_id}"
        out["form_url"] = form
        out["embed_html"] = (f'<iframe src="{form}" title="{html.escape(channel.name, quote=True)}" '
                             'style="width:100%;max-width:560px;height:640px;border:0" loading="lazy"></iframe>')
    return out


async def create_channel(session: AsyncSession, actor: Actor, body: ChannelIn, *, settings: Settings,
                         clock: Clock) -> Channel:
    access.require_roles(actor, access.LEAD)
    name = body.name.strip()
    if not name:
        raise M.error("name", M.REQUIRED)
    missing = rules.missing_config_keys(body.kind, body.config)
    if missing:
        raise DomainError(f"config keys missing: {', '.join(missing)}",
                          errors=[M.item(f"config.{key}", M.REQUIRED) for key in missing])
    if errors := rules.config_errors(body.kind, body.config):
        raise DomainError("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)
    public, secret = rules.split_config(body.kind, body.config)
    if body.kind == "webform":
        await _check_webform(session, public)
    external = str(public.get(rules.EXTERNAL_ID_KEY.get(body.kind, ""), "")) if body.kind in rules.EXTERNAL_ID_KEY \
        else ""
    if body.kind == "instagram" and external:
        clash = (await session.execute(select(Channel.id).where(Channel.kind == "instagram",
                                                                Channel.external_id == external))).first()
        if clash:
            raise M.refusal(Conflict, "config.ig_user_id", M.INSTAGRAM_CHANNEL_EXISTS, ig_user_id=external)
    webhook_key = rules.WEBHOOK_SECRET_KEY.get(body.kind)
    channel = Channel(kind=body.kind, name=name, deal_id=body.deal_id, account=body.deal_id or AGENCY_ACCOUNT,
                      external_id=external, config=public, secrets=encrypt_secrets(settings, secret),
                      webhook_secret_digest=digest(secret[webhook_key]) if webhook_key else None,
                      sales=body.sales, created_at=clock.now(), created_by=actor.login)
    session.add(channel)
    await session.flush()
    return channel


async def _check_webform(session: AsyncSession, public: dict[str, Any]) -> None:
    """A website form answers through an existing e-mail channel; its public slug is unique (a random one is
    given when none is asked for)."""
    mailer = await session.get(Channel, str(public["email_channel_id"]))
    if mailer is None or mailer.kind != "email":
        raise M.error("config.email_channel_id", M.EMAIL_CHANNEL_ID)
    if not public.get("slug"):
        public["slug"] = secrets_module.token_hex(5)
    clash = (await session.execute(select(Channel.id).where(Channel.kind == "webform",
                                                            Channel.external_id == public["slug"]))).first()
    if clash:
        raise M.refusal(Conflict, "config.slug", M.WEBFORM_SLUG_TAKEN, slug=public["slug"])


async def webform_by_slug(session: AsyncSession, slug: str) -> Channel:
    channel = (await session.execute(select(Channel).where(
        Channel.kind == "webform", Channel.external_id == slug, Channel.active.is_(True)))).scalar_one_or_none()
    if channel is None:
        raise M.refusal(NotFound, None, M.WEBFORM_NOT_FOUND)
    return channel


async def mailbox_states(session: AsyncSession, channel_ids: list[str]) -> dict[str, dict[str, Any]]:
    """How each e-mail channel's mailbox was last read: when, whether the server offers IDLE, the last error
    (a refused login, an unreachable server) — for the lead's channel page."""
    if not channel_ids:
        return {}
    rows = (await session.execute(select(MailboxState).where(MailboxState.channel_id.in_(channel_ids)))).scalars()
    return {r.channel_id: {"checked_at": r.checked_at, "error": r.error, "idle": r.idle} for r in rows}


async def list_channels(session: AsyncSession, actor: Actor) -> list[Channel]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.SENIOR)
    return list((await session.execute(select(Channel).order_by(Channel.created_at, Channel.id))).scalars())


class ChannelRefused(DomainError):
    status_code = 502


async def register_webhook(runtime: Any, actor: Actor, channel_id: str, public_url: str, http: Any,
                           telegram_api_url: str) -> dict[str, Any]:
    """The lead registers a Telegram channel's webhook (`setWebhook` with its secret token) from the page. The
    API call is made outside any transaction."""
    from engagement.channels import Permanent, telegram
    from engagement.crypto import decrypt_secrets

    access.require_roles(actor, access.LEAD)
    async with runtime.db.transaction() as session:
        channel = await session.get(Channel, channel_id)
    if channel is None:
        raise M.refusal(NotFound, None, M.CHANNEL_NOT_FOUND)
    if channel.kind != "telegram":
        raise M.error("kind", M.WEBHOOK_TELEGRAM_ONLY, kind=channel.kind)
    url = webhook_url(public_url, channel)
    try:
        await telegram.set_webhook(http, telegram_api_url, decrypt_secrets(runtime.settings,
                                                                           channel.secrets), url)
    except Permanent as exc:
        raise M.refusal(ChannelRefused, "webhook_url", M.TELEGRAM_WEBHOOK_REFUSED, reason=exc.reason) from exc
    return {"id": channel.id, "webhook_url": url, "registered": True}


# ---------------------------------------------------------------- staff ↔ accounts

async def set_staff_accounts(session: AsyncSession, actor: Actor, login: str, accounts: list[str],
                             clock: Clock) -> list[str]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.SENIOR)
    wanted = sorted({a.strip() for a in accounts if a.strip()})
    await session.execute(delete(StaffAccount).where(StaffAccount.login == login))
    for account in wanted:
        session.add(StaffAccount(login=login, account=account, created_at=clock.now(), created_by=actor.login))
    await session.flush()
    return wanted


async def staff_accounts(session: AsyncSession, login: str) -> list[str]:
    rows = await session.execute(select(StaffAccount.account).where(StaffAccount.login == login)
                                 .order_by(StaffAccount.account))
    return list(rows.scalars())


# ---------------------------------------------------------------- conversations

async def tags_of(session: AsyncSession, ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        rows = await session.execute(select(ConversationTag.conversation_id, ConversationTag.tag)
                                     .where(ConversationTag.conversation_id.in_(ids))
                                     .order_by(ConversationTag.tag))
        for cid, tag in rows:
            out[cid].append(tag)
    return out


def conversation_out(c: Conversation, tags: list[str]) -> dict[str, Any]:
    return {"id": c.id, "channel_id": c.channel_id, "kind": c.kind, "thread_kind": c.thread_kind,
            "account": c.account, "deal_id": c.deal_id, "status": c.status, "assignee": c.assignee,
            "customer": {"name": c.customer_name, "handle": c.customer_handle},
            "last_message": {"text": c.last_text, "at": c.last_activity_at, "direction": c.last_direction},
            "tags": tags, "unreachable": c.unreachable, "lead": lead_out(c),
            "category": c.category, "priority": c.priority or "normal",
            # EN-3 (issue 12): the latest cycle's first response and its clock
            "first_response_s": c.first_response_s, "first_response_business_s": c.first_response_business_s,
            "target_s": c.target_s, "sla": c.sla, "sla_due_at": c.sla_due_at, "clock_started_at": c.clock_started_at}


def message_out(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"id": m.id, "direction": m.direction, "text": m.text, "at": m.at, "author": m.author,
                           "external_id": m.external_id, "delivery": m.delivery}
    if m.error:
        out["error"] = m.error
    return out


async def list_conversations(session: AsyncSession, actor: Actor, *, status: str | None, channel: str | None,
                             assignee: str | None, tag: str | None, q: str | None, limit: int,
                             offset: int, account: str | None = None, category: str | None = None,
                             priority: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """Filters of issue 11's contract, plus the client account, the category and the priority (the inbox
    pages); `status=active` is "not resolved" (open or waiting for the client)."""
    conditions: list[Any] = [access.visible_conversations(actor)]
    if account:
        conditions.append(Conversation.account == account)
    if category:
        conditions.append(Conversation.category == category.strip().lower())
    if priority:
        if priority not in ("low", "normal", "high", "urgent"):
            raise M.error("priority", M.PRIORITY_FILTER, value=priority)
        conditions.append(Conversation.priority == priority)
    if status == "active":
        conditions.append(Conversation.status != rules.RESOLVED)
    elif status:
        if status not in rules.STATUSES:
            raise M.error("status", M.STATUS_FILTER, value=status)
        conditions.append(Conversation.status == status)
    if channel:
        conditions.append(Conversation.kind == channel if channel in rules.KINDS else Conversation.channel_id == channel)
    if assignee:
        if assignee == "none":
            conditions.append(Conversation.assignee.is_(None))
        else:
            conditions.append(Conversation.assignee == (actor.login if assignee == "me" else assignee))
    if tag:
        conditions.append(Conversation.id.in_(select(ConversationTag.conversation_id)
                                              .where(ConversationTag.tag == rules.normalise_tag(tag))))
    if q and q.strip():
        conditions.append(Conversation.search_text.contains(q.strip().lower(), autoescape=True))
    rows, total = await _page_and_total(session, conditions, limit, offset)
    tags = await tags_of(session, [c.id for c in rows])
    return [conversation_out(c, tags[c.id]) for c in rows], total


COUNT_CAP = 1_000
NEWEST_FIRST = (Conversation.last_activity_at.desc(), Conversation.id.desc())


async def _page_and_total(session: AsyncSession, conditions: list[Any], limit: int,
                          offset: int) -> tuple[list[Conversation], int]:
    """A page of the list, newest activity first, and its (capped) total. Within the first COUNT_CAP rows one
    reading of the ordered ids gives both (a search's matches are found and sorted once, not once for the page
    and again for the count: the slowest list of bench/inbox_scale.py halved); further on, the page and the
    capped count."""
    if offset + limit <= COUNT_CAP:
        ids = list((await session.execute(
            select(Conversation.id).where(*conditions).order_by(*NEWEST_FIRST).limit(COUNT_CAP + 1))).scalars())
        page_ids = ids[offset:offset + limit]
        found = {c.id: c for c in (await session.execute(
            select(Conversation).where(Conversation.id.in_(page_ids)))).scalars()} if page_ids else {}
        total = CappedTotal(COUNT_CAP) if len(ids) > COUNT_CAP else len(ids)
        return [found[i] for i in page_ids if i in found], total
    rows = list((await session.execute(
        select(Conversation).where(*conditions).order_by(*NEWEST_FIRST).limit(limit).offset(offset))).scalars())
    if rows and len(rows) < limit or not rows and offset == 0:
        return rows, offset + len(rows)   # the last page: the total is known without counting
    counted = await capped_count(session, conditions)
    return rows, CappedTotal(COUNT_CAP) if counted > COUNT_CAP else counted


class CappedTotal(int):
    """A list total that is only a lower bound: more than COUNT_CAP conversations match."""


async def capped_count(session: AsyncSession, conditions: list[Any]) -> int:
    """How many conversations match, counted up to COUNT_CAP + 1 (the list's `X-Total-Count`): a page never
    counts more than ~1,000 index entries, whatever the inbox's size (20 pages of 50: an agent's queue is
    counted exactly; a whole year's archive is "1,000+"). Above the cap the list's total is `CappedTotal(1000)`,
    answered as `X-Total-Count: 1000` with `X-Total-Count-Capped: true`, and paging on goes on working; a last
    page knows its exact total without counting."""
    matching = select(Conversation.id).where(*conditions).limit(COUNT_CAP + 1).subquery()
    return (await session.execute(select(func.count()).select_from(matching))).scalar_one()


async def get_conversation(session: AsyncSession, actor: Actor, conversation_id: str) -> Conversation:
    return await access.require_visible(session, actor, await session.get(Conversation, conversation_id))


async def conversation_detail(session: AsyncSession, actor: Actor, conversation_id: str) -> dict[str, Any]:
    c = await get_conversation(session, actor, conversation_id)
    messages = (await session.execute(select(Message).where(Message.conversation_id == c.id)
                                      .order_by(Message.at, Message.seq, Message.id))).scalars()
    out = conversation_out(c, (await tags_of(session, [c.id]))[c.id])
    out["messages"] = [message_out(m) for m in messages]
    return out


async def assign(session: AsyncSession, actor: Actor, conversation_id: str, agent: str | None) -> Conversation:
    access.require_writer(actor)
    c = await get_conversation(session, actor, conversation_id)
    agent = agent.strip() if agent else None
    access.require_assigner(actor, c, agent)
    c.assignee = agent or None
    return c


async def set_status(session: AsyncSession, actor: Actor, conversation_id: str, status: str,
                     clock: Clock) -> Conversation:
    access.require_writer(actor)
    c = await get_conversation(session, actor, conversation_id)
    quality.log_status(session, c, c.status, status, actor.login, clock.now())
    c.status = status
    await quality.refresh(session, c, clock)
    return c


async def change_tags(session: AsyncSession, actor: Actor, conversation_id: str, add: list[str],
                      remove: list[str]) -> list[str]:
    access.require_writer(actor)
    c = await get_conversation(session, actor, conversation_id)
    to_add = {rules.normalise_tag(t) for t in add} - {""}
    to_remove = {rules.normalise_tag(t) for t in remove} - {""}
    current = set((await tags_of(session, [c.id]))[c.id])
    if to_remove:
        from engagement.changes import touch

        touch(session, c.id, clock_now())
        await session.execute(delete(ConversationTag).where(ConversationTag.conversation_id == c.id,
                                                            ConversationTag.tag.in_(to_remove)))
    for tag in sorted(to_add - current - to_remove):
        session.add(ConversationTag(conversation_id=c.id, tag=tag))
    await session.flush()
    return sorted((current | to_add) - to_remove)


def check_reply_files(c: Conversation, uploads: list[tuple[str, str, bytes]]) -> None:
    """Files go in Telegram chats, VK dialogs and chats, e-mail and website-form threads: Instagram's API takes a
    file only by a public URL and a VK wall comment only our own wall's uploads — text there. At most
    `files.MAX_PER_REPLY`, `files.MAX_BYTES` together, none empty."""
    if not uploads:
        return
    if c.kind not in ("telegram", "vk", "email", "webform") or c.thread_kind == "vk_wall":
        raise M.error("files", M.REPLY_FILES_CHANNEL, where=c.thread_kind)
    if len(uploads) > files.MAX_PER_REPLY:
        raise M.error("files", M.REPLY_FILES_TOO_MANY, limit=files.MAX_PER_REPLY)
    if sum(len(data) for _, _, data in uploads) > files.MAX_BYTES:
        raise M.error("files", M.REPLY_FILES_TOO_LARGE, limit=files.MAX_BYTES // (1024 * 1024))
    for name, _, data in uploads:
        if not data:
            raise M.error("files", M.REPLY_FILE_EMPTY, name=files.clean_name(name))


async def reply(session: AsyncSession, actor: Actor, conversation_id: str, text: str, clock: Clock,
                uploads: list[tuple[str, str, bytes]] | None = None) -> Message:
    """Queue an answer (delivery pending), with the agent's files (name, type, bytes) if any; the sender delivers
    it. The first answer publishes `engagement.conversation.answered.v1` with the response time (EN-3)."""
    access.require_writer(actor)
    c = await get_conversation(session, actor, conversation_id)
    text, uploads = text.strip(), uploads or []
    if not text and not uploads:
        raise M.error("text", M.REQUIRED)
    limit = MAX_TEXT.get(c.kind)
    if limit and len(text) > limit:
        raise M.error("text", M.REPLY_TOO_LONG, kind=c.kind, limit=limit)
    check_reply_files(c, uploads)
    now = clock.now()
    if c.unreachable:
        raise M.refusal(Conflict, "conversation", M.CUSTOMER_UNREACHABLE, reason=c.unreachable)
    if c.thread_kind == "ig_direct" and not rules.direct_window_open(c.last_inbound_at, now):
        raise M.refusal(Conflict, "conversation", M.INSTAGRAM_WINDOW)
    channel = await session.get(Channel, c.channel_id)
    if channel is None or not channel.active:
        raise M.refusal(NotFound, None, M.CHANNEL_GONE)
    # A monitoring mention's conversation (a forum, a review site) has no API we answer through: the agent answers
    # on the site and records the reply here, so it is stored as sent and never queued (engagement.monitoring).
    recorded = c.kind == RECORDED_KIND
    message = Message(id=new_id(), conversation_id=c.id, channel_id=c.channel_id, direction="out", text=text, at=now,
                      seq=await next_seq(session, c.id),
                      author=actor.login, delivery="sent" if recorded else "pending", attempts=0,
                      next_attempt_at=None if recorded else now, sent_at=now if recorded else None,
                      target=dict(c.reply_target), created_at=now)
    session.add(message)
    files.add_outgoing(session, message, uploads, now)
    if c.first_answered_at is None and c.waiting_since is not None:
        c.first_answered_at = now
        add_event(session, ConversationAnswered(
            conversation_id=c.id, channel_id=c.channel_id, channel_kind=c.kind, account=c.account, agent=actor.login,
            message_id=message.id, first_message_at=c.waiting_since, answered_at=now,
            response_seconds=max(0, rules.response_seconds(c.waiting_since, now) - (c.paused_seconds or 0)),
            deal_id=c.deal_id, sales=await is_sales_channel(session, c.channel_id)), clock=clock)
    if c.assignee is None and actor.role == access.AGENT:
        c.assignee = actor.login
    preview = text or ("📎 " + ", ".join(files.clean_name(name) for name, _, _ in uploads))[:300]
    c.last_text, c.last_direction, c.last_activity_at = preview, "out", now
    c.search_text = _search_text(c)
    await session.flush()
    await quality.count_message_sent(session, c, actor.login, now)
    await quality.refresh(session, c, clock)
    if not recorded:
        session.info[OUTGOING_FLAG] = True
    return message


async def next_seq(session: AsyncSession, conversation_id: str) -> int:
    last = (await session.execute(select(func.max(Message.seq)).where(Message.conversation_id == conversation_id)))
    return (last.scalar_one() or 0) + 1


def clock_now() -> Any:
    from shared.clock import utcnow

    return utcnow()


def _search_text(c: Conversation) -> str:
    return " ".join((c.customer_name, c.customer_handle, c.last_text)).lower()[:4000]


def search_text(c: Conversation) -> str:
    return _search_text(c)


# ---------------------------------------------------------------- tag rules (EN-7)

def tag_rule_out(rule: TagRule) -> dict[str, Any]:
    return {"id": rule.id, "kind": rule.kind, "value": rule.value, "tag": rule.tag}


async def list_tag_rules(session: AsyncSession, actor: Actor) -> list[TagRule]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.SENIOR)
    return list((await session.execute(select(TagRule).order_by(TagRule.created_at, TagRule.id))).scalars())


async def add_tag_rule(session: AsyncSession, actor: Actor, kind: str, value: str, tag: str,
                       clock: Clock) -> TagRule:
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.SENIOR)
    if kind not in rules.TAG_RULE_KINDS:
        raise M.error("kind", M.TAG_RULE_KIND, choices=", ".join(rules.TAG_RULE_KINDS))
    value, tag = value.strip(), rules.normalise_tag(tag)
    if not value:
        raise M.error("value", M.REQUIRED)
    if not tag:
        raise M.error("tag", M.REQUIRED)
    rule = TagRule(id=new_id(), kind=kind, value=value, tag=tag, created_at=clock.now(), created_by=actor.login)
    session.add(rule)
    await session.flush()
    return rule


async def delete_tag_rule(session: AsyncSession, actor: Actor, rule_id: str) -> None:
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.SENIOR)
    rule = await session.get(TagRule, rule_id)
    if rule is None:
        raise M.refusal(NotFound, None, M.TAG_RULE_NOT_FOUND)
    await session.delete(rule)
