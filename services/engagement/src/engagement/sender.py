"""The background sender of replies (issue 11 §replies): the outgoing `Message` rows are the queue.

A round claims due pending messages (a lease: `next_attempt_at` moves past the call's timeout, so a crashed
sender's claim expires and another replica retries), calls the channel's API outside any transaction, and
records the outcome: `sent` (with the channel's id), a retry (Telegram's `retry_after`, else backoff), or
`failed` with the channel's words (and the conversation marked unreachable when the channel says the
customer cannot be reached). VK retries reuse the message's `random_id`, so VK never doubles a message.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import quote

import httpx
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from shared.clock import Clock
from shared.db import Database, skip_locked
from shared.loop import WakeableLoop
from shared.settings import Settings
from sqlalchemy import select

from engagement import client_notices, files, pushing, rules
from engagement.channels import (
    PATH_SECRET_HEADER,
    PATH_SECRET_PLACEHOLDER,
    Outgoing,
    OutgoingFile,
    Permanent,
    Retry,
    email,
    instagram,
    telegram,
    vk,
)
from engagement.config import ChannelSettings
from engagement.crypto import decrypt_secrets
from engagement.file_models import MessageFile
from engagement.models import Channel, Conversation, Message
from engagement.services import OUTGOING_FLAG

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=120)


class SecretPathTransport(httpx.AsyncBaseTransport):
    """Puts a path secret (Telegram's bot token) into the URL of a copy of the request, sent untraced: the
    request httpx logs ("HTTP Request: POST …/bot__secret__/sendMessage") and the spans never carry it."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        secret = request.headers.get(PATH_SECRET_HEADER)
        if secret is None:
            return await self.inner.handle_async_request(request)
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != PATH_SECRET_HEADER.encode()]
        path = request.url.raw_path.replace(PATH_SECRET_PLACEHOLDER.encode(), quote(secret, safe=":").encode())
        real = httpx.Request(request.method, request.url.copy_with(raw_path=path), headers=headers,
                             stream=request.stream, extensions=request.extensions)
        with suppress_http_instrumentation():
            return await self.inner.handle_async_request(real)

    async def aclose(self) -> None:
        await self.inner.aclose()


def channel_http(settings: ChannelSettings) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=settings.http_timeout_seconds, transport=SecretPathTransport())


class Sender(WakeableLoop):
    def __init__(self, db: Database, clock: Clock, settings: ChannelSettings, service_settings: Settings,
                 batch: int = 50, poll_seconds: float = 1.0) -> None:
        super().__init__(poll_seconds)
        self.db, self.clock, self.settings, self.batch = db, clock, settings, batch
        self.service_settings = service_settings  # the encryption keys of the channel secrets
        self.http: httpx.AsyncClient | None = None
        self._sent: dict[str, list[datetime]] = {}
        self.pacer = pushing.Pacer()   # replies with files go through engagement.pushing
        db.on_commit(OUTGOING_FLAG, self.wake)

    async def _claim(self) -> list[tuple[Message, Conversation, Channel]]:
        now = self.clock.now()
        async with self.db.transaction() as session:
            query = (select(Message).where(Message.direction == "out", Message.delivery == "pending",
                                           Message.next_attempt_at <= now)
                     .order_by(Message.next_attempt_at, Message.seq, Message.id).limit(self.batch))
            messages = list((await session.execute(skip_locked(query, self.db))).scalars())
            claimed = []
            for message in messages:
                message.attempts += 1
                message.next_attempt_at = now + LEASE
                conversation = await session.get(Conversation, message.conversation_id)
                channel = await session.get(Channel, message.channel_id)
                claimed.append((message, conversation, channel))
            return claimed

    def client(self) -> httpx.AsyncClient:
        if self.http is None:
            self.http = channel_http(self.settings)
        return self.http

    async def _files(self, message_id: str) -> list[OutgoingFile]:
        """The files of a reply, in order (read only for the send, never with the claim)."""
        async with self.db.transaction() as session:
            rows = await session.execute(
                select(MessageFile.kind, MessageFile.name, MessageFile.content_type, MessageFile.data)
                .where(MessageFile.message_id == message_id, MessageFile.state == files.STORED)
                .order_by(MessageFile.position))
            return [OutgoingFile(kind, name, content_type, data) for kind, name, content_type, data in rows]

    async def _call(self, message: Message, conversation: Conversation, channel: Channel) -> str:
        self.client()
        secrets = decrypt_secrets(self.service_settings, channel.secrets)
        out = Outgoing(message_id=message.id, text=message.text, target=message.target or conversation.reply_target,
                       thread_kind=conversation.thread_kind, files=await self._files(message.id))
        if out.files and channel.kind in ("telegram", "vk"):
            return await self._send_with_files(channel, secrets, out)
        if channel.kind == "instagram":
            return await instagram.send(self.http, self.settings.instagram_graph_url, channel.config, secrets, out)
        if channel.kind == "telegram":
            return await telegram.send(self.http, self.settings.telegram_api_url, channel.config, secrets, out)
        if channel.kind == "vk":
            return await vk.send(self.http, self.settings.vk_api_url, self.settings.vk_api_version, channel.config,
                                 secrets, out)
        if channel.kind in ("email", "webform"):
            return await self._send_mail(channel, secrets, out)
        raise Permanent(f"sending on {channel.kind} is not available yet")

    async def _send_with_files(self, channel: Channel, secrets: dict[str, str], out: Outgoing) -> str:
        """A reply with files goes as the group SOP's pushes do (engagement.pushing: a photo, an album, documents
        with the text as caption; VK uploads then `messages.send` with the message's own `random_id`)."""
        chat_id = str(out.target["chat_id"] if channel.kind == "telegram" else out.target["peer_id"])
        content = pushing.PushContent(text=out.text, files=tuple(
            pushing.PushFile(f.kind, f.name, f.content_type, f.data) for f in out.files))
        base_url = self.settings.telegram_api_url if channel.kind == "telegram" else self.settings.vk_api_url
        try:
            return await pushing.deliver(self.http, self.pacer, kind=channel.kind, base_url=base_url,
                                         config={**channel.config, "api_version": self.settings.vk_api_version},
                                         secrets=secrets, chat_id=chat_id, is_group=chat_id.startswith("-"),
                                         content=content, dedupe_key=out.message_id)
        except pushing.Migrated as exc:   # a group became a supergroup: the reply goes to the new chat
            raise Retry(exc.reason, after=0, retarget={"chat_id": int(exc.new_chat_id)}) from exc

    async def _send_mail(self, channel: Channel, secrets: dict[str, str], out: Outgoing) -> str:
        """E-mail answers go over the channel's SMTP; a website form's answers over the SMTP of the e-mail channel
        named in its `email_channel_id` (the form's sender name kept)."""
        mailer = channel
        if channel.kind == "webform":
            async with self.db.transaction() as session:
                mailer = await session.get(Channel, str((channel.config or {}).get("email_channel_id") or ""))
            if mailer is None or mailer.kind != "email" or not mailer.active:
                raise Permanent("the website form has no active e-mail channel to answer through")
            secrets = decrypt_secrets(self.service_settings, mailer.secrets)
        return await email.send(mailer.config, secrets, channel.name, out, timeout=self.settings.http_timeout_seconds,
                                ca_file=self.settings.mail_ca_file)

    async def _record(self, message_id: str, *, external_id: str | None = None, retry: Retry | None = None,
                      failure: Permanent | None = None) -> None:
        now = self.clock.now()
        async with self.db.transaction() as session:
            message = await session.get(Message, message_id)
            if message is None or message.delivery != "pending":
                return
            if retry is not None and retry.retarget:
                message.target = {**(message.target or {}), **retry.retarget}
                conversation = await session.get(Conversation, message.conversation_id)
                conversation.reply_target = {**conversation.reply_target, **retry.retarget}
            if retry is not None:
                if message.attempts >= self.settings.send_max_attempts:
                    message.delivery, message.next_attempt_at = "failed", None
                    message.error = f"gave up after {message.attempts} attempts: {retry.reason}"[:1000]
                    return
                wait = retry.after if retry.after is not None else rules.backoff_seconds(message.attempts)
                message.next_attempt_at = now + timedelta(seconds=float(wait))
                message.error = retry.reason[:1000]
                return
            if failure is not None:
                message.delivery, message.error, message.next_attempt_at = "failed", failure.reason[:1000], None
                if failure.unreachable:
                    conversation = await session.get(Conversation, message.conversation_id)
                    conversation.unreachable = failure.reason[:500]
                return
            message.delivery, message.error, message.next_attempt_at = "sent", None, None
            message.external_id, message.sent_at = external_id or None, now

    def _pace(self, message: Message, conversation: Conversation, channel: Channel) -> float:
        """Telegram's per-chat and per-group limits, kept per process: seconds to wait, or 0 and note the send."""
        if channel.kind != "telegram":
            return 0.0
        chat_id = (message.target or conversation.reply_target).get("chat_id")
        key = f"{channel.id}:{chat_id}"
        now = self.clock.now()
        history = [t for t in self._sent.get(key, []) if (now - t).total_seconds() < 60]
        wait = rules.telegram_wait(history, now, group=isinstance(chat_id, int) and chat_id < 0)
        if wait == 0:
            history.append(now)
        self._sent[key] = history
        return wait

    async def _defer(self, message_id: str, seconds: float) -> None:
        async with self.db.transaction() as session:
            message = await session.get(Message, message_id)
            if message is not None and message.delivery == "pending":
                message.attempts -= 1   # waiting for our own pacing is not a failed attempt
                message.next_attempt_at = self.clock.now() + timedelta(seconds=seconds)

    async def send_batch(self) -> int:
        notices = await client_notices.send_due(self)   # EN-5: the contact person told of a question
        claimed = await self._claim()
        for message, conversation, channel in claimed:
            if (wait := self._pace(message, conversation, channel)) > 0:
                await self._defer(message.id, wait)
                continue
            try:
                external_id = await self._call(message, conversation, channel)
            except Retry as exc:
                await self._record(message.id, retry=exc)
            except Permanent as exc:
                await self._record(message.id, failure=exc)
            except Exception as exc:  # a bug or a broken config: retried, reason kept
                log.warning("sending message %s failed: %s", message.id, type(exc).__name__)
                await self._record(message.id, retry=Retry(f"{type(exc).__name__}"))
            else:
                await self._record(message.id, external_id=external_id)
        return len(claimed) + notices

    async def run_due(self) -> int:
        total = 0
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
