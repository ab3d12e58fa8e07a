"""Groups (EN-8) and the owners' roster of the group SOP (issue 13): entered by hand or discovered by the Telegram
bot, transferred between owners (each change kept), deactivated when the bot is removed.

A transfer fails the group's still pending pushes of the former owner with `transferred` (EN-12): they were made
for that owner; the lead re-targets them to the new owner if they should still go. Deactivating an owner fails
their pending pushes with `owner_left`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from shared.auth import Actor
from shared.clock import Clock
from shared.errors import NotFound
from shared.outbox import add_event
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import sop_rules
from engagement.channels import vk
from engagement.models import Channel
from engagement.sop_models import Group, GroupOwnerChange, OwnerRoster, Push, PushSettings
from shared import messages as M

AGENCY = "agency"
GROUP_CHANNEL_KINDS = ("telegram", "vk")


class GroupIn(msgspec.Struct, forbid_unknown_fields=True):
    external_id: str
    title: str
    channel_id: str | None = None
    owner: str | None = None
    category: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    deal_id: str | None = None


class GroupPatchIn(msgspec.Struct, forbid_unknown_fields=True):
    title: str | msgspec.UnsetType = msgspec.UNSET
    owner: str | None | msgspec.UnsetType = msgspec.UNSET
    category: str | msgspec.UnsetType = msgspec.UNSET
    tags: list[str] | msgspec.UnsetType = msgspec.UNSET
    deal_id: str | None | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET


class BulkIn(msgspec.Struct, forbid_unknown_fields=True):
    ids: list[str]
    category: str | msgspec.UnsetType = msgspec.UNSET
    owner: str | None | msgspec.UnsetType = msgspec.UNSET
    add_tags: list[str] = msgspec.field(default_factory=list)
    remove_tags: list[str] = msgspec.field(default_factory=list)


class OwnerIn(msgspec.Struct, forbid_unknown_fields=True):
    active: bool
    full_name: str | msgspec.UnsetType = msgspec.UNSET
    telegram_chat_id: str | None | msgspec.UnsetType = msgspec.UNSET
    language: str | msgspec.UnsetType = msgspec.UNSET   # the person's, from the gateway: their reminders' language


LANGUAGES = ("ru", "kk", "en", "zh")


def _clean_tags(tags: list[str]) -> list[str]:
    cleaned = sorted({t.strip() for t in tags if t and t.strip()})
    if any(len(t) > 50 for t in cleaned):
        raise M.error("tags", M.SOP_TAG_LONG)
    return cleaned


def _check_text(value: str, field: str, limit: int, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise M.error(field, M.REQUIRED)
    if len(value) > limit:
        raise M.error(field, M.SOP_TOO_LONG, limit=limit)
    return value


async def settings_row(session: AsyncSession, clock: Clock) -> PushSettings:
    row = await session.get(PushSettings, AGENCY)
    if row is None:
        row = PushSettings(id=AGENCY, monthly_quota=4, expire_after_hours=24, reminder_channel_id=None,
                           default_owner=None, updated_at=clock.now(), updated_by="system")
        session.add(row)
        await session.flush()
    return row


# ------------------------------------------------------------------ groups

def group_out(group: Group, pushes_this_month: int = 0) -> dict[str, Any]:
    return {"id": group.id, "channel_id": group.channel_id, "channel_kind": group.channel_kind,
            "external_id": group.external_id, "title": group.title, "owner": group.owner,
            "category": group.category, "tags": list(group.tags or []), "deal_id": group.deal_id,
            "active": group.active, "source": group.source, "created_at": group.created_at,
            "pushes_this_month": pushes_this_month}


async def month_counts(session: AsyncSession, group_ids: list[str], at: datetime, tz: ZoneInfo) -> dict[str, int]:
    """The quota count (sent or pending pushes due this agency month) of each group."""
    if not group_ids:
        return {}
    start, end = sop_rules.month_bounds(at, tz)
    rows = await session.execute(select(Push.group_id, func.count()).where(
        Push.group_id.in_(group_ids), Push.status.in_(("pending", "sent")), Push.due_at >= start,
        Push.due_at < end).group_by(Push.group_id))
    return dict(rows.all())


async def get_group(session: AsyncSession, group_id: str) -> Group:
    group = await session.get(Group, group_id)
    if group is None:
        raise M.refusal(NotFound, None, M.SOP_GROUP_NOT_FOUND)
    return group


async def create_group(session: AsyncSession, actor: Actor, data: GroupIn, clock: Clock,
                       source: str = "hand") -> Group:
    kind = "manual"
    if data.channel_id is not None:
        channel = await session.get(Channel, data.channel_id)
        if channel is None or channel.kind not in GROUP_CHANNEL_KINDS:
            raise M.error("channel_id", M.SOP_NO_CHANNEL)
        kind = channel.kind
    external_id = _check_text(data.external_id, "external_id", 100, required=True)
    exists = (await session.execute(select(Group.id).where(
        Group.channel_id.is_(None) if data.channel_id is None else Group.channel_id == data.channel_id,
        Group.external_id == external_id))).first()
    if exists:
        raise M.error("external_id", M.SOP_GROUP_EXISTS)
    now = clock.now()
    group = Group(channel_id=data.channel_id, channel_kind=kind, external_id=external_id,
                  title=_check_text(data.title, "title", 300, required=True), owner=data.owner or None,
                  category=_check_text(data.category, "category", 50), tags=_clean_tags(data.tags),
                  deal_id=data.deal_id, active=True, source=source, created_at=now, updated_at=now)
    session.add(group)
    await session.flush()
    if group.owner:
        session.add(GroupOwnerChange(group_id=group.id, from_owner=None, to_owner=group.owner, at=now,
                                     by=actor.login))
    return group


async def list_groups(session: AsyncSession, *, category: str | None, tag: str | None, owner: str | None,
                      q: str | None, active: bool | None, page: int, per_page: int) -> tuple[list[Group], int]:
    from engagement.sop_materialise import target_filter

    query = select(Group)
    if category:
        query = query.where(Group.category == category)
    if owner:
        query = query.where(Group.owner == owner)
    if active is not None:
        query = query.where(Group.active.is_(active))
    if q:
        like = f"%{q.strip().lower()}%"
        query = query.where(or_(func.lower(Group.title).like(like), Group.external_id.like(like)))
    if tag:  # tags are a JSON list: the same clause as a rule's target
        query = query.where(target_filter({"tags": [tag]}, (await session.connection()).dialect.name))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.order_by(Group.title, Group.id).offset((page - 1) * per_page)
                                  .limit(per_page))).scalars()
    return list(rows), total


async def transfer(session: AsyncSession, group: Group, owner: str | None, by: str, clock: Clock) -> int:
    """Change the group's owner, keep the change, fail the former owner's pending pushes (`transferred`)."""
    if owner == group.owner:
        return 0
    now = clock.now()
    session.add(GroupOwnerChange(group_id=group.id, from_owner=group.owner, to_owner=owner, at=now, by=by))
    former = group.owner
    group.owner, group.updated_at = owner, now
    if former is None:
        return 0
    pending = (await session.execute(select(Push).where(Push.group_id == group.id, Push.status == "pending",
                                                        Push.owner == former))).scalars().all()
    for push in pending:
        fail(session, push, "transferred", f"the group went from {former} to {owner or 'nobody'}", now, clock)
    return len(pending)


async def patch_group(session: AsyncSession, actor: Actor, group: Group, data: GroupPatchIn, clock: Clock) -> Group:
    if data.title is not msgspec.UNSET:
        group.title = _check_text(data.title, "title", 300, required=True)
    if data.category is not msgspec.UNSET:
        group.category = _check_text(data.category, "category", 50)
    if data.tags is not msgspec.UNSET:
        group.tags = _clean_tags(data.tags)
    if data.deal_id is not msgspec.UNSET:
        group.deal_id = data.deal_id
    if data.active is not msgspec.UNSET:
        group.active = data.active
    if data.owner is not msgspec.UNSET:
        await transfer(session, group, data.owner or None, actor.login, clock)
    group.updated_at = clock.now()
    return group


async def bulk(session: AsyncSession, actor: Actor, data: BulkIn, clock: Clock) -> int:
    if not data.ids or len(data.ids) > 5000:
        raise M.error("ids", M.SOP_BULK_COUNT)
    groups = list((await session.execute(select(Group).where(Group.id.in_(data.ids)))).scalars())
    if len(groups) != len(set(data.ids)):
        raise M.error("ids", M.SOP_GROUPS_MISSING)
    add, remove = _clean_tags(data.add_tags), set(_clean_tags(data.remove_tags))
    for group in groups:
        if data.category is not msgspec.UNSET:
            group.category = _check_text(data.category, "category", 50)
        if add or remove:
            group.tags = sorted((set(group.tags or []) | set(add)) - remove)
        if data.owner is not msgspec.UNSET:
            await transfer(session, group, data.owner or None, actor.login, clock)
        group.updated_at = clock.now()
    return len(groups)


# ------------------------------------------------------------------ failures (shared by every path)

def fail(session: AsyncSession, push: Push, reason: str, detail: str | None, now: datetime, clock: Clock) -> None:
    """A pending push fails with a reason; partners hear of it (engagement.push.failed.v1)."""
    from shared.events.engagement import PushFailed

    push.status, push.reason, push.detail, push.failed_at = "failed", reason, detail, now
    push.next_attempt_at = push.lease_until = None
    add_event(session, PushFailed(push_id=push.id, task_id=push.task_id, group_id=push.group_id, owner=push.owner,
                                  reason=reason, detail=detail or "", due_at=push.due_at, failed_at=now),
              clock=clock)


# ------------------------------------------------------------------ roster

def owner_out(row: OwnerRoster) -> dict[str, Any]:
    return {"login": row.login, "full_name": row.full_name, "active": row.active,
            "telegram_chat_id": row.telegram_chat_id, "language": row.language}


async def list_owners(session: AsyncSession) -> list[dict[str, Any]]:
    return [owner_out(r) for r in (await session.execute(select(OwnerRoster).order_by(OwnerRoster.login))).scalars()]


async def put_owner(session: AsyncSession, login: str, data: OwnerIn, clock: Clock) -> OwnerRoster:
    now = clock.now()
    row = await session.get(OwnerRoster, login)
    if row is None:
        row = OwnerRoster(login=login, full_name="", active=True, telegram_chat_id=None, language="ru",
                          updated_at=now)
        session.add(row)
    if data.full_name is not msgspec.UNSET:
        row.full_name = _check_text(data.full_name, "full_name", 300)
    if data.telegram_chat_id is not msgspec.UNSET:
        chat = (data.telegram_chat_id or "").strip()
        if chat and not chat.lstrip("-").isdigit():
            raise M.error("telegram_chat_id", M.TELEGRAM_CHAT_ID)
        row.telegram_chat_id = chat or None
    if data.language is not msgspec.UNSET:
        if data.language not in LANGUAGES:
            raise M.error("language", M.LANGUAGE)
        row.language = data.language
    was_active, row.active, row.updated_at = row.active, data.active, now
    if was_active and not data.active:
        pending = (await session.execute(select(Push).where(Push.owner == login, Push.status == "pending")))
        for push in pending.scalars().all():
            fail(session, push, "owner_left", f"{login} no longer works here", now, clock)
    await session.flush()
    return row


# ------------------------------------------------------------------ discovery (Telegram my_chat_member, VK chat actions)

async def bot_membership(session: AsyncSession, channel: Channel, chat: dict[str, Any], status: str,
                         clock: Clock) -> str:
    """Telegram: the bot was added to (member / administrator) or removed from (kicked / left) a group chat."""
    if chat.get("type") not in ("group", "supergroup") or chat.get("id") is None:
        return "not a group chat"
    return await _membership(session, channel, str(chat["id"]), str(chat.get("title") or ""), status, clock)


async def vk_membership(session: AsyncSession, channel: Channel, peer_id: str, status: str, clock: Clock) -> str:
    """VK: the community was added to (member) or removed from (kicked) a chat. VK's event does not carry the
    chat's title: the group is named by its number ("VK chat 4") until the lead renames it."""
    return await _membership(session, channel, peer_id, f"VK chat {vk.chat_number(peer_id)}", status, clock,
                             keep_title=True)


async def _membership(session: AsyncSession, channel: Channel, external_id: str, title: str, status: str,
                      clock: Clock, *, keep_title: bool = False) -> str:
    now = clock.now()
    group = (await session.execute(select(Group).where(Group.channel_id == channel.id,
                                                       Group.external_id == external_id))).scalar_one_or_none()
    if status in ("member", "administrator"):
        if group is None:
            settings = await settings_row(session, clock)
            group = Group(channel_id=channel.id, channel_kind=channel.kind, external_id=external_id,
                          title=(title or external_id)[:300], owner=settings.default_owner,
                          category="", tags=[], deal_id=channel.deal_id, active=True, source="bot",
                          created_at=now, updated_at=now)
            session.add(group)
            return f"group {external_id} discovered"
        group.active, group.updated_at = True, now
        if title and not keep_title:
            group.title = title[:300]
        return f"group {external_id} active again"
    if status in ("kicked", "left") and group is not None:
        group.active, group.updated_at = False, now
        return f"group {external_id} inactive: bot {status}"
    return f"bot status {status}"


async def migrate_chat(session: AsyncSession, channel_id: str, old_id: str, new_id: str, clock: Clock) -> bool:
    """A group became a supergroup: the same group row takes the new chat id (its pushes and history stay).
    A row the bot's `my_chat_member` made for the new chat first (no pushes yet) gives way to the old one."""
    taken = (await session.execute(select(Group).where(Group.channel_id == channel_id,
                                                       Group.external_id == new_id))).scalar_one_or_none()
    if taken is not None:
        old = (await session.execute(select(Group.id).where(Group.channel_id == channel_id,
                                                            Group.external_id == old_id))).first()
        has_pushes = (await session.execute(select(Push.id).where(Push.group_id == taken.id).limit(1))).first()
        if old is None or has_pushes:
            return False
        await session.execute(delete(GroupOwnerChange).where(GroupOwnerChange.group_id == taken.id))
        await session.delete(taken)
        await session.flush()
    result = await session.execute(update(Group).where(Group.channel_id == channel_id, Group.external_id == old_id)
                                   .values(external_id=new_id, active=True, updated_at=clock.now()))
    return result.rowcount > 0
