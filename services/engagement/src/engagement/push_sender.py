"""The bot auto-send of group SOP pushes (issue 13, EN-11) and the owners' Telegram reminders: a supervised
background loop like sender.py.

A round claims due pending auto pushes with a lease (`next_attempt_at` moves past the lease, so a crashed
replica's claim expires and another retries), calls `engagement.pushing.deliver` OUTSIDE any transaction (many
at once; the process's one `Pacer` keeps the platforms' limits), and records each outcome in its own short
transaction: sent (engagement.push.sent.v1), a retry (the channel's `retry_after`, else backoff), failed with
reason `channel_error` and the channel's own words (engagement.push.failed.v1), or — Telegram's
`migrate_to_chat_id` — the group takes the new chat id and the push is due again at once, so it goes once, to
the new chat. A claimed push is leased (`lease_until`): the expiry timer leaves it to the sender, which fails
it as `expired` if a retry finds its window closed. A push that stopped being pending meanwhile (transferred,
owner left) is left as it is.

Reminders (one per owner per task, queued at materialisation) go through the reminder channel's bot to the
owner's linked chat, in the same round.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from shared.clock import Clock, as_utc
from shared.db import Database, skip_locked
from shared.loop import WakeableLoop
from shared.settings import Settings
from sqlalchemy import select

from engagement import pushing, rules, sop_groups
from engagement.channels import Permanent, Retry
from engagement.config import ChannelSettings
from engagement.crypto import decrypt_secrets
from engagement.models import Channel
from engagement.sender import channel_http
from engagement.sop_materialise import PUSH_FLAG
from engagement.sop_models import Group, OwnerRoster, Push, PushReminder, PushSettings, PushTask, SopFile
from engagement.sop_services import record_sent

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=300)   # longer than a delivery's own 429 waits (pushing.PaceSettings.max_wait)
MAX_ATTEMPTS = 8


class PushSender(WakeableLoop):
    def __init__(self, db: Database, clock: Clock, settings: ChannelSettings, service_settings: Settings,
                 pacer: pushing.Pacer | None = None, batch: int = 200, poll_seconds: float = 1.0) -> None:
        super().__init__(poll_seconds)
        self.db, self.clock, self.settings, self.batch = db, clock, settings, batch
        self.service_settings = service_settings
        self.pacer = pacer or pushing.Pacer()
        self.http: httpx.AsyncClient | None = None
        db.on_commit(PUSH_FLAG, self.wake)

    def client(self) -> httpx.AsyncClient:
        if self.http is None:
            self.http = channel_http(self.settings)
        return self.http

    def _url(self, kind: str) -> str:
        return self.settings.telegram_api_url if kind == "telegram" else self.settings.vk_api_url

    # ---------------------------------------------------------------- pushes

    async def _claim(self) -> list[dict[str, Any]]:
        now = self.clock.now()
        jobs = []
        async with self.db.transaction() as session:
            query = (select(Push).where(Push.status == "pending", Push.mode == "auto", Push.next_attempt_at <= now)
                     .order_by(Push.next_attempt_at, Push.id).limit(self.batch))
            for push in (await session.execute(skip_locked(query, self.db))).scalars().all():
                push.attempts += 1
                push.next_attempt_at = push.lease_until = now + LEASE   # the expiry timer leaves it to us
                group = await session.get(Group, push.group_id)
                channel = await session.get(Channel, group.channel_id) if group and group.channel_id else None
                task = await session.get(PushTask, push.task_id)
                jobs.append({"push": push.id, "attempts": push.attempts, "group": group, "channel": channel,
                             "content": await self._content(session, task.content if task else {})})
        return jobs

    async def _content(self, session: Any, content: dict[str, Any]) -> pushing.PushContent:
        files, links = [], []
        for item in content.get("attachments") or []:
            if item.get("kind") == "link":
                links.append(item["url"])
                continue
            row = await session.get(SopFile, item.get("file_id"))
            if row is not None:
                files.append(pushing.PushFile(kind=item["kind"], name=row.name, content_type=row.content_type,
                                              data=row.data))
        return pushing.PushContent(text=content.get("text") or "", files=tuple(files), links=tuple(links))

    async def _deliver(self, job: dict[str, Any]) -> tuple[str, Any]:
        group, channel = job["group"], job["channel"]
        try:
            if group is None or channel is None or not channel.active:
                raise Permanent("the group has no active bot channel")
            external = await pushing.deliver(
                self.client(), self.pacer, kind=channel.kind, base_url=self._url(channel.kind), config=channel.config,
                secrets=decrypt_secrets(self.service_settings, channel.secrets), chat_id=group.external_id,
                is_group=True, content=job["content"], dedupe_key=f"push:{job['push']}")
        except (Retry, Permanent, pushing.Migrated) as exc:
            return "error", exc
        except Exception as exc:  # a bug or a broken config: retried, the reason kept in the log
            log.warning("auto-send of push %s failed: %s", job["push"], type(exc).__name__)
            return "error", Retry(type(exc).__name__)
        return "sent", external

    async def _record(self, job: dict[str, Any], outcome: str, value: Any) -> None:
        now = self.clock.now()
        async with self.db.transaction() as session:
            push = await session.get(Push, job["push"])
            if push is None or push.status != "pending":
                return
            group = await session.get(Group, push.group_id)
            if outcome == "sent":
                record_sent(session, push, group, now, self.clock, external_id=str(value)[:100] or None)
            elif isinstance(value, pushing.Migrated):
                moved = group is not None and group.channel_id is not None and await sop_groups.migrate_chat(
                    session, group.channel_id, group.external_id, value.new_chat_id, self.clock)
                if not moved:   # the new chat is another group's already: say so rather than loop
                    sop_groups.fail(session, push, "channel_error", value.reason[:1000], now, self.clock)
                    return
                push.attempts -= 1   # nothing was sent: the move is not an attempt
                push.next_attempt_at, push.lease_until = now, None
                session.info[PUSH_FLAG] = True
            elif isinstance(value, Permanent):
                sop_groups.fail(session, push, "channel_error", value.reason[:1000], now, self.clock)
            elif push.attempts >= MAX_ATTEMPTS:
                sop_groups.fail(session, push, "channel_error", f"gave up after {push.attempts} attempts: "
                                f"{value.reason}"[:1000], now, self.clock)
            else:
                push.lease_until = None
                settings = await session.get(PushSettings, sop_groups.AGENCY)
                hours = settings.expire_after_hours if settings else 24
                if now >= as_utc(push.due_at) + timedelta(hours=hours):   # its window closed while we tried
                    sop_groups.fail(session, push, "expired", f"not sent within {hours} hours: {value.reason}"[:1000],
                                    now, self.clock)
                    return
                wait = value.after if value.after is not None else rules.backoff_seconds(push.attempts)
                push.next_attempt_at, push.detail = now + timedelta(seconds=float(wait)), value.reason[:1000]

    async def send_batch(self) -> int:
        jobs = await self._claim()
        results = await asyncio.gather(*(self._deliver(job) for job in jobs))
        for job, (outcome, value) in zip(jobs, results, strict=True):
            await self._record(job, outcome, value)
        return len(jobs)

    # ---------------------------------------------------------------- reminders

    async def remind_batch(self) -> int:
        async with self.db.transaction() as session:
            settings = await session.get(PushSettings, sop_groups.AGENCY)
            channel = await session.get(Channel, settings.reminder_channel_id) if settings and \
                settings.reminder_channel_id else None
            rows = list((await session.execute(select(PushReminder, PushTask, OwnerRoster.language).join(
                PushTask, PushTask.id == PushReminder.task_id).outerjoin(
                OwnerRoster, OwnerRoster.login == PushReminder.owner).where(PushReminder.status == "pending")
                .limit(self.batch))).all())
        if not rows:
            return 0
        outcomes = await asyncio.gather(*(self._remind(channel, r, t, language) for r, t, language in rows))
        async with self.db.transaction() as session:
            for (reminder, _, _), (status, detail) in zip(rows, outcomes, strict=True):
                row = await session.get(PushReminder, (reminder.task_id, reminder.owner))
                if row is not None and row.status == "pending":
                    row.status, row.detail = status, detail
                    row.sent_at = self.clock.now() if status == "sent" else None
        return len(rows)

    async def _remind(self, channel: Channel | None, reminder: PushReminder, task: PushTask,
                      language: str | None) -> tuple[str, str | None]:
        if channel is None or channel.kind != "telegram" or not channel.active:
            return "failed", "no active Telegram reminder channel"
        due = as_utc(task.due_at).astimezone(self.service_settings.calendar.tz)
        text = reminder_text(task.name, reminder.pushes, due, language or "ru")
        try:
            await pushing.deliver(self.client(), self.pacer, kind="telegram", base_url=self._url("telegram"),
                                  config=channel.config, secrets=decrypt_secrets(self.service_settings,
                                                                                 channel.secrets),
                                  chat_id=reminder.chat_id, is_group=False, content=pushing.PushContent(text=text),
                                  dedupe_key=f"reminder:{reminder.task_id}:{reminder.owner}")
        except (Retry, Permanent, pushing.Migrated) as exc:
            return "failed", str(exc)[:1000]   # a reminder is a courtesy: the counter in the gateway remains
        return "sent", None

    # ---------------------------------------------------------------- loop

    async def run_due(self) -> int:
        total = await self.remind_batch()
        while (n := await self.send_batch()) > 0:
            total += n
        return total

    async def run(self) -> None:
        while not self._stopping:
            await self.run_due()   # a database outage raises: the supervisor restarts us and readiness says so
            await self.nap()

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
            self.http = None


# The reminder is written by this service to a person's Telegram (no page to translate it): in the language
# the gateway gave for them, the due time in the agency's zone.
REMINDER = {
    "ru": "🔔 {name}: пушей к отправке — {n}, {date} в {time}",
    "kk": "🔔 {name}: жіберілетін пуштар — {n}, {date} сағат {time}",
    "en": "🔔 {name}: {n} push(es) to send, {date} at {time}",
    "zh": "🔔 {name}：待发送推送 {n} 条，{date} {time}",
}


def reminder_text(name: str, pushes: int, due_local: datetime, language: str) -> str:
    template = REMINDER.get(language, REMINDER["ru"])
    return template.format(name=name, n=pushes, date=due_local.strftime("%d.%m.%Y"), time=due_local.strftime("%H:%M"))

