"""EN-5: the notice that tells a client account's contact person about an agent's question — by e-mail through
the account's e-mail channel (else the agency's own), or by Telegram through the account's bot (else the
agency's), to the contact set in the account's care settings. The reply sender's loop sends due notices; a
notice is retried like a reply (a lease, `retry_after`, backoff) and ends `sent` or `failed` with the channel's
words, shown on the conversation. Choice where the issue is silent: the notice is in Russian, the language the
seeds' agencies write to their clients in; the answer page it links to speaks the client's browser language.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.db import skip_locked
from shared.signing import make_token
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import rules
from engagement.channels import Outgoing, Permanent, Retry, email, telegram
from engagement.crypto import decrypt_secrets
from engagement.models import AGENCY_ACCOUNT, Channel, ClientQuestion, Conversation
from engagement.quality_models import CareSettings
from engagement.services import OUTGOING_FLAG

if TYPE_CHECKING:
    from engagement.sender import Sender

log = logging.getLogger(__name__)
PURPOSE = "ask-client"   # the same signed link as the answer page's (ask_client.PURPOSE)
LEASE = timedelta(seconds=120)


async def plan_notice(session: AsyncSession, question: ClientQuestion, account: str, now: datetime) -> None:
    """Choose how the contact person hears of the question (e-mail first), if the account names one."""
    contact = await session.get(CareSettings, account)
    if contact is None:
        return
    if contact.contact_email:
        question.notice_via, question.notice_to = "email", contact.contact_email
    elif contact.contact_telegram:
        question.notice_via, question.notice_to = "telegram", contact.contact_telegram
    else:
        return
    question.notice_state, question.notice_next_at = "pending", now
    session.info[OUTGOING_FLAG] = True   # wakes the sender when the transaction commits


def answer_link(public_url: str, question: ClientQuestion, secret_key: str) -> str:
    token = make_token({"q": question.id}, secret_key=secret_key, purpose=PURPOSE, expires_at=question.expires_at)
    return f"{public_url.rstrip('/')}/answer/{token}"


def notice_text(question: ClientQuestion, link: str, client_name: str) -> tuple[str, str]:
    subject = f"Вопрос от службы поддержки{f' ({client_name})' if client_name else ''}"
    body = (f"Здравствуйте!\n\nНашему агенту нужен ваш ответ, чтобы ответить клиенту:\n\n«{question.question}»\n\n"
            f"Ответьте по ссылке (действует до {question.expires_at:%d.%m.%Y}):\n{link}\n")
    return subject, body


async def _claim(sender: Sender) -> list[tuple[str, str, str, str]]:
    """Due notices under a lease: (question id, via, to, account)."""
    now = sender.clock.now()
    async with sender.db.transaction() as session:
        query = (select(ClientQuestion).where(ClientQuestion.notice_state == "pending",
                                              ClientQuestion.notice_next_at <= now)
                 .order_by(ClientQuestion.notice_next_at).limit(sender.batch))
        rows = list((await session.execute(skip_locked(query, sender.db))).scalars())
        claimed = []
        for q in rows:
            q.notice_attempts += 1
            q.notice_next_at = now + LEASE
            conversation = await session.get(Conversation, q.conversation_id)
            claimed.append((q.id, q.notice_via or "", q.notice_to or "", conversation.account))
        return claimed


async def _channel(sender: Sender, via: str, account: str) -> Channel | None:
    async with sender.db.transaction() as session:
        rows = (await session.execute(select(Channel).where(
            Channel.kind == via, Channel.active.is_(True), Channel.account.in_([account, AGENCY_ACCOUNT])))).scalars()
        return min(rows, key=lambda c: (c.account == AGENCY_ACCOUNT, c.created_at), default=None)


async def _send(sender: Sender, question_id: str, via: str, to: str, account: str) -> None:
    channel = await _channel(sender, via, account)
    if channel is None:
        raise Permanent(f"no active {via} channel to send the notice through")
    async with sender.db.transaction() as session:
        question = await session.get(ClientQuestion, question_id)
        link = answer_link(sender.settings.public_url, question, sender.service_settings.secret_key)
        subject, text = notice_text(question, link, "")
    secrets = decrypt_secrets(sender.service_settings, channel.secrets)
    if via == "email":
        out = Outgoing(message_id=f"notice-{question_id}", text=text, thread_kind="email",
                       target={"to": to, "subject": subject, "new_thread": True})
        await email.send(channel.config, secrets, channel.name, out, timeout=sender.settings.http_timeout_seconds,
                         ca_file=sender.settings.mail_ca_file)
    else:
        out = Outgoing(message_id=f"notice-{question_id}", text=f"{subject}\n\n{text}", thread_kind="tg_chat",
                       target={"chat_id": int(to) if to.lstrip("-").isdigit() else to})
        await telegram.send(sender.client(), sender.settings.telegram_api_url, channel.config, secrets, out)


async def _record(sender: Sender, question_id: str, *, retry: Retry | None = None,
                  failure: Permanent | None = None) -> None:
    now = sender.clock.now()
    async with sender.db.transaction() as session:
        q = await session.get(ClientQuestion, question_id)
        if q is None or q.notice_state != "pending":
            return
        if retry is not None and q.notice_attempts < sender.settings.send_max_attempts:
            wait = retry.after if retry.after is not None else rules.backoff_seconds(q.notice_attempts)
            q.notice_next_at, q.notice_error = now + timedelta(seconds=float(wait)), retry.reason[:500]
        elif retry is not None or failure is not None:
            reason = failure.reason if failure is not None else f"gave up after {q.notice_attempts} attempts: " \
                                                                  f"{retry.reason if retry else ''}"
            q.notice_state, q.notice_error, q.notice_next_at = "failed", reason[:500], None
        else:
            q.notice_state, q.notice_error, q.notice_next_at, q.notice_sent_at = "sent", None, None, now


async def send_due(sender: Sender) -> int:
    claimed = await _claim(sender)
    for question_id, via, to, account in claimed:
        try:
            await _send(sender, question_id, via, to, account)
        except Retry as exc:
            await _record(sender, question_id, retry=exc)
        except Permanent as exc:
            await _record(sender, question_id, failure=exc)
        except Exception as exc:  # a bug or a broken config: retried, reason kept
            log.warning("notice for question %s failed: %s", question_id, type(exc).__name__)
            await _record(sender, question_id, retry=Retry(type(exc).__name__))
        else:
            await _record(sender, question_id)
    return len(claimed)


def notice_out(q: ClientQuestion) -> dict[str, Any] | None:
    if q.notice_via is None:
        return None
    return {"via": q.notice_via, "to": q.notice_to, "state": q.notice_state, "error": q.notice_error,
            "sent_at": q.notice_sent_at}
