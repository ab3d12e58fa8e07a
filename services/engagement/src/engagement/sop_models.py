"""Models of the group SOP (issue 13, EN-8…EN-13): chat groups and their owners, SOP rules and calendar entries,
the push tasks they materialise and one push per target group.

- `Group` (EN-8): a Telegram group / VK chat on a channel account (or entered by hand: `channel_id` null), its
  owner (a staff login), category and tags. `GroupOwnerChange` keeps every transfer.
- `OwnerRoster`: the staff who may own groups (active or left) and their linked Telegram chat for reminders.
- `SopRule` (EN-9) and `CalendarEntry` (EN-10): what is pushed when, to which target.
- `PushTask` (EN-11): one occurrence materialised at its due minute, content copied (a later rule edit does not
  rewrite it); unique per (source, source_id, due_at), so a timer fired twice makes it once.
- `Push` (EN-11, EN-12): one group's push of a task: pending → sent | failed (with a reason).
- `SopFile`: an attachment's bytes (≤ 20 MB), kept in the database so every replica serves them.
- `PushSettings`: one row ("agency") of the quota, expiry window and reminder channel — settings, never constants.
"""

from __future__ import annotations

from datetime import date, datetime

from shared.db import UTCDateTime
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from engagement.models import Base, BigId, new_id


class Group(Base):
    __tablename__ = "sop_groups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    channel_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # None: a hand-entered group
    channel_kind: Mapped[str] = mapped_column(String(20), default="manual")  # telegram | vk | manual
    external_id: Mapped[str] = mapped_column(String(100))  # the chat id (Telegram) / peer id (VK)
    title: Mapped[str] = mapped_column(String(300), default="")
    owner: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    category: Mapped[str] = mapped_column(String(50), default="", index=True)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    deal_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(10), default="hand")  # bot | hand
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("channel_id", "external_id", name="uq_sop_groups_channel_external"),)


class GroupOwnerChange(Base):
    __tablename__ = "group_owner_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("sop_groups.id"), index=True)
    from_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    to_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    by: Mapped[str] = mapped_column(String(100))


class OwnerRoster(Base):
    __tablename__ = "owner_roster"

    login: Mapped[str] = mapped_column(String(100), primary_key=True)
    full_name: Mapped[str] = mapped_column(String(300), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    telegram_chat_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    language: Mapped[str] = mapped_column(String(8), default="ru", server_default="ru")   # of their reminders
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SopRule(Base):
    __tablename__ = "sop_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    target: Mapped[dict] = mapped_column(JSON, default=dict)  # {"category"?, "tags"?, "group_ids"?}
    time: Mapped[str] = mapped_column(String(5))  # "HH:MM" local
    weekdays: Mapped[list] = mapped_column(JSON, default=list)  # ISO 1..7; [] with every_n_days
    every_n_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    starts_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    timezone: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict] = mapped_column(JSON, default=dict)  # {"text", "attachments"}
    mode: Mapped[str] = mapped_column(String(10), default="manual")  # manual | auto
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on edit: the timer key of the next occurrence
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CalendarEntry(Base):
    __tablename__ = "sop_calendar"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    target: Mapped[dict] = mapped_column(JSON, default=dict)
    content: Mapped[dict] = mapped_column(JSON, default=dict)
    mode: Mapped[str] = mapped_column(String(10), default="manual")
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))


class SopFile(Base):
    __tablename__ = "sop_files"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))


class PushTask(Base):
    __tablename__ = "push_tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    source: Mapped[str] = mapped_column(String(10))  # rule | calendar
    source_id: Mapped[str] = mapped_column(String(36))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    name: Mapped[str] = mapped_column(String(200), default="")
    mode: Mapped[str] = mapped_column(String(10), default="manual")
    content: Mapped[dict] = mapped_column(JSON, default=dict)  # copied at materialisation
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("source", "source_id", "due_at", name="uq_push_tasks_occurrence"),
                      Index("ix_push_tasks_due_at", "due_at"))


class Push(Base):
    __tablename__ = "pushes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    task_id: Mapped[str] = mapped_column(ForeignKey("push_tasks.id"))
    group_id: Mapped[str] = mapped_column(ForeignKey("sop_groups.id"))
    owner: Mapped[str] = mapped_column(String(100), default="")
    mode: Mapped[str] = mapped_column(String(10), default="manual")  # the task's, or manual for a hand group
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the task's: counted per month without a join
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sent | failed
    reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)  # the channel's own words
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True)

    __table_args__ = (UniqueConstraint("task_id", "group_id", name="uq_pushes_task_group"),
                      Index("ix_pushes_owner_status", "owner", "status"),
                      Index("ix_pushes_group_due", "group_id", "due_at"),
                      Index("ix_pushes_auto_due", "status", "mode", "next_attempt_at"))


class PushReminder(Base):
    """One Telegram reminder per owner per task (queued at materialisation, sent by the push sender)."""

    __tablename__ = "push_reminders"

    task_id: Mapped[str] = mapped_column(ForeignKey("push_tasks.id"), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(100))
    pushes: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sent | failed
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_push_reminders_status", "status"),)


class PushSettings(Base):
    __tablename__ = "push_settings"

    id: Mapped[str] = mapped_column(String(10), primary_key=True)  # "agency"
    monthly_quota: Mapped[int] = mapped_column(Integer, default=4)
    expire_after_hours: Mapped[int] = mapped_column(Integer, default=24)
    reminder_channel_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    default_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)  # of bot-discovered groups
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))
