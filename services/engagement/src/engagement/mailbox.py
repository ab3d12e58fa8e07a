"""The e-mail channel's inbound side (issue 11 §e-mail): a supervised background loop (`MailboxPoller`, the
"engagement mailbox" loop in readiness) fetches each e-mail channel's INBOX over IMAP, stores every new message
raw as a `Delivery` (deduplicated by Message-ID, so the same mail fetched twice or delivered to two folders has
one effect) and wakes the inbound processor, which threads it into a conversation (`process_mail`).

- What is new is tracked per mailbox by UID (`MailboxState`: UIDVALIDITY + the highest UID stored). The mailbox
  is opened read-only and bodies are read with `BODY.PEEK[]`: the agency's own mail client still sees its mail
  unread. On the first connection only mail from the day before the channel was created on is taken (the
  mailbox's older history is not imported); a changed UIDVALIDITY re-reads that window (Message-ID dedupe).
- Where the server offers IDLE, a watcher per mailbox waits in IDLE (a worker thread; re-issued every 25
  minutes as RFC 2177 advises) and wakes the poller as soon as the server announces a new message; every
  mailbox is also polled every `ENGAGEMENT_IMAP_POLL_SECONDS` (60 by default) whatever IDLE says.
- Connection security as `channels.email.connection_security` says: `imap_security` ("ssl", "starttls", "none")
  when given, else `tls` (true: implicit TLS on port 993, STARTTLS on any other port; false: plain). Certificates
  are verified against the system's authorities plus `ENGAGEMENT_MAIL_CA_FILE`.
A mailbox that cannot be reached keeps its error in `MailboxState.error` and is tried again next round.
"""

from __future__ import annotations

import asyncio
import hashlib
import imaplib
import logging
import re
import select
import ssl
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from typing import Any

from shared.clock import Clock
from shared.db import Database
from shared.loop import WakeableLoop
from shared.settings import Settings
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.channels import Inbound
from engagement.channels import email as mail_channel
from engagement.crypto import decrypt_secrets
from engagement.models import Channel, Conversation, Delivery, MailboxState, Message

log = logging.getLogger(__name__)
FETCH_BATCH = 100
IDLE_RENEW_SECONDS = 25 * 60
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# ---------------------------------------------------------------- IMAP (blocking; run in a worker thread)

def _connect(config: dict[str, Any], secrets: dict[str, str], timeout: float,
             ca_file: str | None = None) -> imaplib.IMAP4:
    host, port = str(config["imap_host"]), int(config["imap_port"])
    security = mail_channel.connection_security(config, "imap")
    if security == "ssl":
        client: imaplib.IMAP4 = imaplib.IMAP4_SSL(host, port, ssl_context=mail_channel.tls_context(ca_file),
                                                  timeout=timeout)
    else:
        client = imaplib.IMAP4(host, port, timeout=timeout)
    try:
        if security == "starttls":
            if "STARTTLS" not in client.capabilities:  # imaplib's own words ("TLS not supported") say less
                raise imaplib.IMAP4.error("the IMAP server does not offer STARTTLS: check the port and the "
                                          "connection security (ssl / starttls)")
            client.starttls(mail_channel.tls_context(ca_file))
        client.login(str(config["username"]), secrets.get("password", ""))
    except BaseException:
        with suppress(OSError):  # (a failed TLS handshake has already closed it)
            client.shutdown()  # refused before a session began: the socket is closed, not left to the collector
        raise
    return client


def describe_failure(exc: Exception) -> str:
    """What a lead reads in the channel list when the mailbox cannot be read (no password in it)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the IMAP server's certificate is not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return f"no TLS with the IMAP server ({exc.reason or exc}): check the port and the connection security"
    return f"{type(exc).__name__}: {exc}"


def _logout(client: imaplib.IMAP4) -> None:
    with suppress(Exception):
        client.logout()


def _offers_idle(client: imaplib.IMAP4) -> bool:
    """Many servers list IDLE only after login, so the capabilities are asked again."""
    if "IDLE" in client.capabilities:
        return True
    try:
        typ, data = client.capability()
    except (imaplib.IMAP4.error, OSError):
        return False
    return typ == "OK" and b"IDLE" in (data[0] or b"").upper().split()


@dataclass
class Fetched:
    uidvalidity: int
    idle: bool
    messages: list[tuple[int, bytes]]  # (uid, raw RFC 5322 bytes), oldest first


def fetch_new(config: dict[str, Any], secrets: dict[str, str], uidvalidity: int | None, last_uid: int,
              since: datetime, timeout: float = 30.0, batch: int = FETCH_BATCH,
              ca_file: str | None = None) -> Fetched:
    client = _connect(config, secrets, timeout, ca_file)
    try:
        typ, _ = client.select("INBOX", readonly=True)
        if typ != "OK":
            raise imaplib.IMAP4.error("cannot open INBOX")
        validity = int((client.response("UIDVALIDITY")[1] or [b"0"])[0] or 0)
        if uidvalidity is None or validity != uidvalidity:
            day = since - timedelta(days=1)
            criteria = f"SINCE {day.day:02d}-{MONTHS[day.month - 1]}-{day.year}"
            last_uid = 0
        else:
            criteria = f"UID {last_uid + 1}:*"
        typ, data = client.uid("SEARCH", None, criteria)
        uids = sorted(u for u in (int(x) for x in (data[0] or b"").split()) if u > last_uid)[:batch]
        messages = []
        for uid in uids:
            typ, parts = client.uid("FETCH", str(uid), "(BODY.PEEK[])")
            raw = next((p[1] for p in parts or [] if isinstance(p, tuple) and len(p) == 2), None)
            if typ == "OK" and raw is not None:
                messages.append((uid, bytes(raw)))
        return Fetched(uidvalidity=validity, idle=_offers_idle(client), messages=messages)
    finally:
        _logout(client)


def wait_for_news(config: dict[str, Any], secrets: dict[str, str], stop: threading.Event,
                  max_seconds: float = IDLE_RENEW_SECONDS, timeout: float = 30.0,
                  ca_file: str | None = None) -> bool:
    """IMAP IDLE (RFC 2177) on INBOX until the server announces a message (True), `max_seconds` pass or `stop`
    is set (False). Waits on the socket with `select` so a stop is noticed within a second."""
    client = _connect(config, secrets, timeout, ca_file)
    try:
        client.select("INBOX", readonly=True)
        tag = client._new_tag()  # type: ignore[attr-defined]  # imaplib has no IDLE before Python 3.14
        client.send(tag + b" IDLE\r\n")
        if not client.readline().startswith(b"+"):
            return False
        news = False
        deadline = time.monotonic() + max_seconds
        while not stop.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([client.sock], [], [], 1.0)
            if not readable:
                continue
            line = client.readline()
            if not line:
                raise ConnectionError("the IMAP server closed the connection during IDLE")
            if re.match(rb"\* \d+ (EXISTS|RECENT)", line):
                news = True
                break
        client.send(b"DONE\r\n")
        for _ in range(100):
            line = client.readline()
            if not line or line.startswith(tag):
                break
        return news
    finally:
        _logout(client)


# ---------------------------------------------------------------- storing and threading

def _dedupe_key(channel_id: str, raw: bytes) -> str:
    headers = BytesHeaderParser().parsebytes(raw)
    ids = mail_channel.message_ids(headers.get("Message-ID"))
    basis = ids[0] if ids else hashlib.sha256(raw).hexdigest()
    return f"email:{channel_id}:{hashlib.sha256(basis.encode()).hexdigest()}"


def external_id(message_id: str) -> str:
    return message_id if len(message_id) <= 200 else "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()


async def store_mail(session: AsyncSession, dialect: str, channel_id: str, raw: bytes, now: datetime) -> bool:
    insert = (pg_insert if dialect == "postgresql" else sqlite_insert)(Delivery.__table__)
    statement = insert.values(kind="email", channel_id=channel_id, dedupe_key=_dedupe_key(channel_id, raw),
                              body=raw, received_at=now, next_attempt_at=now, attempts=0, outcome="") \
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    return (await session.execute(statement)).rowcount > 0


async def _linked_channel_ids(session: AsyncSession, channel: Channel) -> list[str]:
    """The e-mail channel and the website forms that answer through it (their threads share the mailbox)."""
    forms = (await session.execute(sql_select(Channel).where(Channel.kind == "webform"))).scalars()
    return [channel.id, *[f.id for f in forms if (f.config or {}).get("email_channel_id") == channel.id]]


async def resolve_thread(session: AsyncSession, channel: Channel, mail: mail_channel.Mail) -> tuple[str, str]:
    """(channel id, thread key) of the conversation a mail belongs to: In-Reply-To first, then References
    (newest first), then a reply+token recipient; otherwise a new thread keyed by this mail's token."""
    channel_ids = await _linked_channel_ids(session, channel)

    async def by_token(token: str) -> tuple[str, str] | None:
        row = (await session.execute(sql_select(Conversation.channel_id, Conversation.thread_key).where(
            Conversation.channel_id.in_(channel_ids), Conversation.thread_key == f"mail:{token}"))).first()
        return (row[0], row[1]) if row else None

    for parent in [*mail.in_reply_to, *reversed(mail.references)]:
        row = (await session.execute(
            sql_select(Conversation.channel_id, Conversation.thread_key)
            .join(Message, Message.conversation_id == Conversation.id)
            .where(Message.channel_id.in_(channel_ids), Message.external_id == external_id(parent)).limit(1))).first()
        if row:
            return row[0], row[1]
        if (token := mail_channel.token_of_our_id(parent)) and (found := await by_token(token)):
            return found
    for token in mail_channel.tokens_in(mail.recipients, str(channel.config.get("address", ""))):
        if found := await by_token(token):
            return found
    return channel.id, f"mail:{mail_channel.thread_token(mail.message_id)}"


async def process_mail(session: AsyncSession, channel: Channel, raw: bytes, clock: Clock) -> str:
    """A stored mail into its conversation (called by the inbound processor)."""
    from engagement.inbound import record_inbound  # the processor imports this module

    mail = mail_channel.parse(raw, clock.now())
    if mail.from_address == str(channel.config.get("address", "")).lower():
        return "our own mail (a copy of an answer): skipped"
    channel_id, thread_key = await resolve_thread(session, channel, mail)
    target_channel = channel if channel_id == channel.id else await session.get(Channel, channel_id)
    text = mail.text or mail.subject or "(пустое письмо)"
    item = Inbound(
        thread_kind="email", thread_key=thread_key, external_id=external_id(mail.message_id), text=text,
        at=mail.at, author=mail.from_name or mail.from_address, customer_name=mail.from_name or mail.from_address,
        customer_handle=mail.from_address,
        reply_target={"to": mail.from_address, "name": mail.from_name, "subject": mail.subject,
                      "in_reply_to": mail.message_id,
                      "references": [*mail.references, mail.message_id][-mail_channel.MAX_REFERENCES:],
                      "token": thread_key.removeprefix("mail:")},
        raw={"message_id": mail.message_id, "subject": mail.subject, "from": mail.from_address,
             "in_reply_to": mail.in_reply_to, "references": mail.references[-mail_channel.MAX_REFERENCES:],
             "auto_reply": mail.auto_reply},
        attachments=mail.attachments)
    if target_channel is not channel:
        item.thread_kind = "webform"
    stored = await record_inbound(session, target_channel, item, clock)
    return "1 stored" if stored is not None else "already stored"


# ---------------------------------------------------------------- the loop

class MailboxPoller(WakeableLoop):
    def __init__(self, db: Database, clock: Clock, settings: Settings, *, poll_seconds: float = 60.0,
                 on_stored: Any = None, timeout: float = 30.0, ca_file: str | None = None) -> None:
        super().__init__(poll_seconds)
        self.db, self.clock, self.settings, self.timeout = db, clock, settings, timeout
        self.ca_file = ca_file  # an extra authority to trust (ENGAGEMENT_MAIL_CA_FILE)
        self.on_stored = on_stored
        self._stop_threads: dict[str, threading.Event] = {}  # per watcher: ends its IDLE thread within a second
        self._watchers: dict[str, asyncio.Task] = {}

    async def _channels(self) -> list[tuple[Channel, MailboxState | None]]:
        async with self.db.transaction() as session:
            channels = list((await session.execute(sql_select(Channel).where(
                Channel.kind == "email", Channel.active.is_(True)).order_by(Channel.created_at))).scalars())
            states = {s.channel_id: s for s in (await session.execute(sql_select(MailboxState))).scalars()}
            return [(c, states.get(c.id)) for c in channels]

    async def poll_channel(self, channel: Channel, state: MailboxState | None) -> int:
        secrets = decrypt_secrets(self.settings, channel.secrets)
        now = self.clock.now()
        error, fetched = None, None
        try:
            fetched = await asyncio.to_thread(
                fetch_new, dict(channel.config), secrets, state.uidvalidity if state else None,
                state.last_uid if state else 0, channel.created_at, self.timeout, FETCH_BATCH, self.ca_file)
        except Exception as exc:
            error = describe_failure(exc)[:500]
            log.warning("mailbox of channel %s: %s", channel.id, error)
        stored = 0
        async with self.db.transaction() as session:
            row = await session.get(MailboxState, channel.id)
            if row is None:
                row = MailboxState(channel_id=channel.id, last_uid=0, idle=False)
                session.add(row)
            row.checked_at, row.error = now, error
            if fetched is not None:
                if row.uidvalidity != fetched.uidvalidity:
                    row.last_uid = 0
                row.uidvalidity, row.idle = fetched.uidvalidity, fetched.idle
                for uid, raw in fetched.messages:
                    stored += await store_mail(session, self.db.dialect, channel.id, raw, now)
                    row.last_uid = max(row.last_uid or 0, uid)
        if stored and self.on_stored is not None:
            self.on_stored()
        if fetched is not None and len(fetched.messages) >= FETCH_BATCH:
            self.wake()  # more waiting: the next round comes at once
        return stored

    async def poll_all(self) -> int:
        total = 0
        for channel, state in await self._channels():
            total += await self.poll_channel(channel, state)
        return total

    def _watch_idle(self, channels: list[tuple[Channel, MailboxState | None]]) -> None:
        active = {channel.id for channel, _ in channels}
        for channel_id in [c for c in self._watchers if c not in active]:  # a channel switched off
            self._stop_threads.pop(channel_id).set()
            self._watchers.pop(channel_id).cancel()
        for channel, state in channels:
            task = self._watchers.get(channel.id)
            if (state is None or not state.idle) or (task is not None and not task.done()):
                continue
            stop = self._stop_threads[channel.id] = threading.Event()
            self._watchers[channel.id] = asyncio.create_task(self._watch(channel, stop), name=f"imap idle {channel.id}")

    async def _watch(self, channel: Channel, stop: threading.Event) -> None:
        secrets = decrypt_secrets(self.settings, channel.secrets)
        failures = 0
        while not self._stopping and not stop.is_set():
            try:
                news = await asyncio.to_thread(wait_for_news, dict(channel.config), secrets, stop,
                                               IDLE_RENEW_SECONDS, self.timeout, self.ca_file)
                failures = 0
                if news:
                    self.wake()
            except Exception as exc:  # the poll still runs on its interval; IDLE is tried again later
                failures += 1
                log.info("IMAP IDLE of channel %s: %s", channel.id, type(exc).__name__)
                await asyncio.sleep(min(300.0, 5.0 * 2 ** min(failures, 6)))

    def stop(self) -> None:
        super().stop()
        for event in self._stop_threads.values():
            event.set()

    async def run(self) -> None:
        try:
            while not self._stopping:
                # A mailbox's own failure is kept on its channel (poll_channel); the database away raises here:
                # the supervisor restarts us and readiness says so.
                await self.poll_all()
                self._watch_idle(await self._channels())
                await self.nap()
        finally:
            for event in self._stop_threads.values():
                event.set()
            for task in self._watchers.values():
                task.cancel()
            for task in self._watchers.values():
                with suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 3)
