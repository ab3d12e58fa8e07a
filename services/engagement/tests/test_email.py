"""Issue 11 §e-mail against a real SMTP + IMAP server on loopback (mail-devel: aiosmtpd + pymap), no mocks: a mail
becomes a conversation; the answer goes out over SMTP with our Message-ID, In-Reply-To and References; the
customer's answer to it threads back (by In-Reply-To, by References, by the reply+token address); the same mail
fetched twice is one message; SMTP away → retried and delivered once; a 5xx is permanent with the reason;
quoted history and HTML are turned into the new text only."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from engagement.channels import email as mail_channel
from engagement.mailbox import wait_for_news
from engagement.models import Delivery, MailboxState, Message

from .mailserver import PASSWORD, SUPPORT, mail

CUSTOMER = "ann@example.com"


async def _poll(api) -> int:
    stored = api.in_app(api.runtime.state["mailbox"].poll_all)
    await api.process()
    return stored


async def _email_channel(api, mailserver, **overrides) -> dict:
    return await api.channel("email", mailserver.config(**overrides), name="Поддержка Kaspi Cakes")


async def _reply(api, conversation_id: str, text: str) -> dict:
    return await api.ok("post", f"/conversations/{conversation_id}/replies", {"text": text}, status=202)


async def _detail(api, conversation_id: str) -> dict:
    return await api.ok("get", f"/conversations/{conversation_id}")


# ---------------------------------------------------------------- pure rules


def test_issue11_quoted_history_is_stripped_in_english_and_russian() -> None:
    english = "Thanks, that works!\n\nOn Mon, 2 Mar 2026 at 10:00, Support <support@agency.test> wrote:\n> Try again\n"
    assert mail_channel.strip_quoted(english) == "Thanks, that works!"
    russian = "Спасибо, получила.\n\n2 мар. 2026 г., в 10:00, Поддержка <support@agency.test>:\n> Отправили\n"
    assert mail_channel.strip_quoted(russian) == "Спасибо, получила."
    writes = "Да, адрес тот же.\nПонедельник, 2 марта 2026, Поддержка пишет:\n> Уточните адрес\n"
    assert mail_channel.strip_quoted(writes) == "Да, адрес тот же."
    outlook = "Please call me.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\n\nOld text"
    assert mail_channel.strip_quoted(outlook) == "Please call me."
    signature = "See you.\n-- \nAnn, +7 701 000 00 00"
    assert mail_channel.strip_quoted(signature) == "See you."
    inline = "> quoted line\nmy answer"
    assert mail_channel.strip_quoted(inline) == "my answer"


def test_issue11_html_only_mail_becomes_text_without_scripts_or_quotes() -> None:
    markup = ("<html><head><style>p{color:red}</style></head><body><p>Здравствуйте,&nbsp;заказ <b>#42</b>"
              "</p><p>не пришёл</p><script>alert(1)</script><div class=\"gmail_quote\">On Mon … wrote:"
              "<blockquote>old</blockquote></div></body></html>")
    assert mail_channel.html_to_text(markup) == "Здравствуйте, заказ #42\n\nне пришёл"


def test_issue11_reply_token_is_recognised_only_on_our_own_address() -> None:
    token = mail_channel.thread_token("<a@b>")
    address = mail_channel.token_address(SUPPORT, token)
    assert address == f"support+{token}@agency.test"
    assert mail_channel.tokens_in([address, f"other+{token}@agency.test"], SUPPORT) == [token]
    ours = mail_channel.our_message_id("0b6c8f4e-3f57-4d5b-9a0f-2f1e7c3b9d11", token, SUPPORT)
    assert mail_channel.token_of_our_id(ours) == token and mail_channel.token_of_our_id("<x@y>") is None


# ---------------------------------------------------------------- against the server


async def test_issue11_email_config_keys_are_required_and_the_password_never_comes_back(api, mailserver) -> None:
    response = await api.post("/channels", {"kind": "email", "name": "Почта", "config": {"address": SUPPORT}})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {f"config.{k}" for k in ("imap_host", "imap_port", "smtp_host", "smtp_port", "username",
                                              "password", "tls")}
    bad = await api.post("/channels", {"kind": "email", "name": "Почта",
                                       "config": mailserver.config(imap_port="imap", tls="yes")})
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {"config.imap_port", "config.tls"}
    channel = await _email_channel(api, mailserver)
    assert PASSWORD not in str(channel) and "password" not in channel["config"]
    listed = await api.ok("get", "/channels")
    assert PASSWORD not in str(listed)


async def test_issue11_a_mail_becomes_a_conversation_with_the_quote_stripped(api_any, mailserver) -> None:
    api = api_any
    await _email_channel(api, mailserver)
    mailserver.send(mail("Заказ не пришёл", "Здравствуйте! Заказ #42 не пришёл.\n\n"
                         "On Sun, 1 Mar 2026, Support <support@agency.test> wrote:\n> Ваш заказ отправлен\n",
                         message_id="<first@example.com>"))
    assert await _poll(api) == 1
    [conversation] = await api.conversations()
    assert conversation["kind"] == "email" and conversation["status"] == "open"
    assert conversation["customer"] == {"name": "Ann Petrova", "handle": CUSTOMER}
    assert conversation["last_message"]["text"] == "Здравствуйте! Заказ #42 не пришёл."
    [message] = (await _detail(api, conversation["id"]))["messages"]
    assert message["external_id"] == "<first@example.com>" and message["direction"] == "in"
    [state] = await api.rows(MailboxState)
    assert state.error is None and state.last_uid >= 1
    events = await api.events("engagement.message.received.v1")
    assert [e.channel_kind for e in events] == ["email"] and events[0].thread_kind == "email"


async def test_issue11_html_only_mail_arrives_as_text(api, mailserver) -> None:
    await _email_channel(api, mailserver)
    mailserver.send(mail("Вопрос", "", html="<p>Есть ли <b>доставка</b> в Алматы?</p><blockquote>old</blockquote>",
                         message_id="<html-only@example.com>"))
    await _poll(api)
    [conversation] = await api.conversations()
    assert conversation["last_message"]["text"] == "Есть ли доставка в Алматы?"


async def test_issue11_the_same_mail_fetched_twice_is_one_message(api, mailserver) -> None:
    await _email_channel(api, mailserver)
    first = mail("Вопрос", "Когда откроетесь?", message_id="<twice@example.com>")
    mailserver.send(first)
    assert await _poll(api) == 1
    assert await _poll(api) == 0                       # nothing new by UID
    mailserver.send(first)                             # the same Message-ID arrives again (a second copy)

    [state] = await api.rows(MailboxState)

    async def forget() -> None:                        # and the poller loses its place (UIDVALIDITY changed)
        async with api.runtime.db.transaction() as session:
            row = await session.get(MailboxState, state.channel_id)
            row.uidvalidity, row.last_uid = None, 0

    api.in_app(forget)
    assert await _poll(api) == 0
    assert await api.count(Delivery) == 1 and await api.count(Message) == 1
    assert len(await api.conversations()) == 1


async def test_issue11_answer_threads_on_the_customers_side_and_their_answer_threads_back(api_any, mailserver) -> None:
    api = api_any
    await _email_channel(api, mailserver)
    mailserver.send(mail("Доставка", "Где мой торт?", message_id="<q1@example.com>",
                         references="<older@example.com>"))
    await _poll(api)
    [conversation] = await api.conversations()
    reply = await _reply(api, conversation["id"], "Курьер будет в 15:00.")
    assert reply["delivery"] == "pending"
    assert await api.send() == 1
    sent = next(m for m in (await _detail(api, conversation["id"]))["messages"] if m["id"] == reply["id"])
    assert sent["delivery"] == "sent"
    [received] = mailserver.inbox(CUSTOMER)
    token = mail_channel.thread_token("<q1@example.com>")
    assert received["Message-ID"].strip() == sent["external_id"] == f"<{reply['id']}.{token}@agency.test>"
    assert received["In-Reply-To"].strip() == "<q1@example.com>"
    assert received["References"].split() == ["<older@example.com>", "<q1@example.com>"]
    assert received["Subject"] == "Re: Доставка"
    assert received["Reply-To"] == f"support+{token}@agency.test"
    assert "Поддержка Kaspi Cakes" in str(received["From"]) and SUPPORT in str(received["From"])
    assert received.get_body(preferencelist=("plain",)).get_content().strip() == "Курьер будет в 15:00."
    assert len(mailserver.inbox(SUPPORT)) == 1         # the answer went to the customer only

    api.clock.advance(timedelta(hours=1))
    # the customer answers our answer (In-Reply-To: our Message-ID) → the same conversation
    mailserver.send(mail("Re: Доставка", "Спасибо!\n\n> Курьер будет в 15:00.", message_id="<q2@example.com>", date="06:10",
                         in_reply_to=sent["external_id"], references=f"<q1@example.com> {sent['external_id']}"))
    # a client that keeps only References
    mailserver.send(mail("Re: Доставка", "И ещё вопрос", message_id="<q3@example.com>", date="06:20",
                         references=f"<q1@example.com> {sent['external_id']}"))
    # a client that drops the headers but answers to the Reply-To address
    mailserver.send(mail("Re: Доставка", "Курьер пришёл", message_id="<q4@example.com>", date="06:30",
                         to=f"support+{token}@agency.test"))
    assert await _poll(api) == 3
    [same] = await api.conversations()
    assert same["id"] == conversation["id"]
    messages = (await _detail(api, conversation["id"]))["messages"]
    assert [m["text"] for m in messages] == ["Где мой торт?", "Курьер будет в 15:00.", "Спасибо!", "И ещё вопрос",
                                             "Курьер пришёл"]
    # a new mail without any thread headers is a new conversation
    mailserver.send(mail("Другое", "Новый заказ", message_id="<new@example.com>"))
    await _poll(api)
    assert len(await api.conversations()) == 2


async def test_issue11_smtp_away_is_retried_and_the_answer_delivered_once(api, mailserver) -> None:
    await _email_channel(api, mailserver)
    mailserver.send(mail("Вопрос", "Вы работаете?", message_id="<down@example.com>"))
    await _poll(api)
    [conversation] = await api.conversations()
    reply = await _reply(api, conversation["id"], "Да, до 20:00.")
    mailserver.smtp_down()
    assert await api.send() == 1
    message = next(m for m in (await _detail(api, conversation["id"]))["messages"] if m["id"] == reply["id"])
    assert message["delivery"] == "pending" and "unreachable" in message["error"]
    mailserver.smtp_up()
    assert await api.send() == 0                       # waits out its backoff
    api.clock.advance(timedelta(minutes=10))
    assert await api.send() == 1
    message = next(m for m in (await _detail(api, conversation["id"]))["messages"] if m["id"] == reply["id"])
    assert message["delivery"] == "sent" and "error" not in message
    api.clock.advance(timedelta(minutes=10))
    assert await api.send() == 0
    assert len(mailserver.inbox(CUSTOMER)) == 1


async def test_issue11_smtp_5xx_is_permanent_with_the_servers_reason(api, mailserver) -> None:
    await _email_channel(api, mailserver)
    mailserver.send(mail("Вопрос", "Алло?", message_id="<gone@example.com>"))
    await _poll(api)
    [conversation] = await api.conversations()

    async def unknown_user(server, session, envelope, address, rcpt_options):  # the relay's own answer
        return "550 5.1.1 <ann@example.com>: Recipient address rejected: User unknown"

    mailserver.service.handler.handle_RCPT = unknown_user
    reply = await _reply(api, conversation["id"], "Перезвоним.")
    assert await api.send() == 1
    message = next(m for m in (await _detail(api, conversation["id"]))["messages"] if m["id"] == reply["id"])
    assert message["delivery"] == "failed" and "550" in message["error"] and "User unknown" in message["error"]
    api.clock.advance(timedelta(hours=1))
    assert await api.send() == 0                       # permanent: never tried again


async def test_issue11_a_mailbox_that_refuses_the_login_keeps_the_error(api, mailserver) -> None:
    await _email_channel(api, mailserver, password="wrong-password")
    mailserver.send(mail("Вопрос", "Алло?", message_id="<auth@example.com>"))
    assert await _poll(api) == 0
    [state] = await api.rows(MailboxState)
    assert state.error and "wrong-password" not in state.error and await api.count(Delivery) == 0
    [listed] = await api.ok("get", "/channels")
    assert listed["mailbox"]["error"] == state.error and listed["mailbox"]["checked_at"]


async def test_issue11_imap_idle_announces_a_new_mail(mailserver) -> None:
    stop = threading.Event()
    result: list[bool] = []
    config = mailserver.config()
    thread = threading.Thread(target=lambda: result.append(
        wait_for_news(config, {"password": PASSWORD}, stop, max_seconds=60, timeout=10)), daemon=True)
    thread.start()
    # IDLE is entered once the watcher's connection is up (a mail before that is the poll's): keep appending
    deadline = time.monotonic() + 30
    while not result and time.monotonic() < deadline:
        mailserver.append(SUPPORT, mail("Новое", "Привет", message_id=f"<idle-{time.monotonic_ns()}@example.com>"))
        thread.join(0.5)
    stop.set()
    thread.join(10)
    assert result == [True]


async def test_issue11_the_supervised_mailbox_loop_fetches_as_soon_as_idle_announces_a_mail(api, mailserver) -> None:
    """The "engagement mailbox" loop (readiness lists it): with a 60-second poll interval, a mail appended to the
    mailbox is stored within seconds, because the IDLE watcher wakes the loop."""
    from engagement.app import SUPERVISED, spec
    from engagement.config import ChannelSettings

    if SUPERVISED:
        assert "engagement mailbox" in spec(ChannelSettings()).loops(api.runtime)
    await _email_channel(api, mailserver)
    poller = api.runtime.state["mailbox"]
    assert poller.poll_seconds == 60.0
    running = api.client.blocking_portal.start_task_soon(poller.run)
    try:
        deadline = time.monotonic() + 30
        while not poller._watchers and time.monotonic() < deadline:   # the first round saw IDLE offered
            time.sleep(0.05)
        assert poller._watchers, "no IDLE watcher started"
        [state] = await api.rows(MailboxState)
        assert state.idle is True and state.error is None
        while await api.count(Delivery) == 0 and time.monotonic() < deadline:
            # appended until the watcher is in IDLE (a mail before that waits for the next poll)
            mailserver.append(SUPPORT, mail("Живой", "Пришло?", message_id=f"<live-{time.monotonic_ns()}@x.kz>"))
            time.sleep(0.5)
        assert await api.count(Delivery) >= 1
    finally:
        async def stop() -> None:
            poller.stop()

        api.in_app(stop)
        running.result(timeout=15)
