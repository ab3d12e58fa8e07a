"""Issue 11 §e-mail over TLS, against a real SMTP + IMAP server on loopback that speaks it (tests/mailserver.py
with a throwaway authority from tests/pki.py; the app trusts it through `ENGAGEMENT_MAIL_CA_FILE`, i.e.
`ChannelSettings.mail_ca_file`): a mail read over IMAP STARTTLS becomes a conversation and the answer goes out over
SMTP STARTTLS (the server refuses mail before STARTTLS); the same over implicit TLS (IMAPS, SMTPS) chosen with
`imap_security` / `smtp_security` on ports other than 993 / 465; IMAP IDLE over TLS; a server whose certificate
no trusted authority signed → the answer fails at once with the reason and the poller keeps the error and goes on
with the other mailboxes; a server without TLS while TLS is asked for → the same, never a silent plain login."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from engagement.channels import email as mail_channel
from engagement.config import ChannelSettings
from engagement.mailbox import wait_for_news
from engagement.models import Channel, Delivery, MailboxState

from shared import messages as M

from .conftest import Api, _api
from .mailserver import PASSWORD, SUPPORT, MailServer, mail
from .pki import server_files

CUSTOMER = "ann@example.com"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> SimpleNamespace:
    """Two authorities: the one the app is told to trust, and a stranger's."""
    root = tmp_path_factory.mktemp("pki")
    return SimpleNamespace(trusted=server_files(root / "trusted", "Zabota test CA"),
                           stranger=server_files(root / "stranger", "Somebody else's CA"))


def _serve(files) -> Iterator[MailServer]:
    server = MailServer(tls=files)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def tls_server(pki) -> Iterator[MailServer]:
    yield from _serve(pki.trusted)


@pytest.fixture
def stranger_server(pki) -> Iterator[MailServer]:
    yield from _serve(pki.stranger)


@pytest.fixture
async def api_tls(database_url, clock, stand_in, pki) -> AsyncIterator[Api]:
    """SQLite and PostgreSQL; the app trusts the test authority (besides the system's)."""
    async for a in _api(database_url, clock, stand_in.url, mail_ca_file=pki.trusted.ca_file):
        yield a


async def _poll(api) -> int:
    stored = api.in_app(api.runtime.state["mailbox"].poll_all)
    await api.process()
    return stored


async def _reply(api, conversation_id: str, text: str) -> dict:
    return await api.ok("post", f"/conversations/{conversation_id}/replies", {"text": text}, status=202)


async def _message(api, conversation_id: str, message_id: str) -> dict:
    detail = await api.ok("get", f"/conversations/{conversation_id}")
    return next(m for m in detail["messages"] if m["id"] == message_id)


async def _state(api, channel_id: str) -> MailboxState:
    return next(s for s in await api.rows(MailboxState) if s.channel_id == channel_id)


async def _mail_in(api, server: MailServer, message_id: str) -> dict:
    """A customer's mail to support, read by the poller: its conversation."""
    server.send(mail("Заказ", "Где мой торт?", message_id=message_id))
    assert await _poll(api) == 1
    [conversation] = await api.conversations()
    return conversation


# ---------------------------------------------------------------- rules


def test_issue11_connection_security_is_the_chosen_one_else_tls_by_the_well_known_port() -> None:
    security = mail_channel.connection_security
    by_port = {"tls": True, "imap_port": 993, "smtp_port": 587}
    assert (security(by_port, "imap"), security(by_port, "smtp")) == ("ssl", "starttls")
    assert security({"tls": True, "imap_port": 143, "smtp_port": 465}, "smtp") == "ssl"
    assert security({"tls": True, "imap_port": 143}, "imap") == "starttls"
    assert security({"tls": False, "imap_port": 993}, "imap") == "none"      # old configs keep their meaning
    forwarded = {"tls": True, "imap_port": 10993, "smtp_port": 2525, "imap_security": "ssl"}
    assert (security(forwarded, "imap"), security(forwarded, "smtp")) == ("ssl", "starttls")
    local_relay = {"tls": True, "imap_port": 993, "smtp_port": 25, "smtp_security": "none"}
    assert (security(local_relay, "imap"), security(local_relay, "smtp")) == ("ssl", "none")


def test_issue11_the_mail_ca_file_setting_is_checked_when_the_service_starts(tmp_path, pki) -> None:
    assert ChannelSettings.from_env({}).mail_ca_file is None
    assert ChannelSettings.from_env({"ENGAGEMENT_MAIL_CA_FILE": pki.trusted.ca_file}).mail_ca_file == \
        pki.trusted.ca_file
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate")
    for wrong in (str(tmp_path / "missing.pem"), str(not_pem)):
        with pytest.raises(ValueError, match="ENGAGEMENT_MAIL_CA_FILE"):
            ChannelSettings.from_env({"ENGAGEMENT_MAIL_CA_FILE": wrong})


async def test_issue11_connection_security_must_be_ssl_starttls_or_none(api_tls, tls_server) -> None:
    api = api_tls
    bad = await api.post("/channels", {"kind": "email", "name": "Почта", "config": tls_server.config(
        tls=True, imap_security="SSL/TLS", smtp_security=True)})
    assert bad.status_code == 422
    errors = {e["field"]: e for e in bad.json()["errors"]}
    assert set(errors) == {"config.imap_security", "config.smtp_security"}
    assert errors["config.imap_security"]["code"] == M.MAIL_SECURITY
    assert errors["config.imap_security"]["params"] == {"choices": "ssl, starttls, none"}
    assert await api.count(Channel) == 0                                    # nothing half-written
    channel = await api.channel("email", tls_server.config(tls=True, imap_security="starttls", smtp_security=""))
    assert channel["config"]["imap_security"] == "starttls" and "smtp_security" not in channel["config"]


# ---------------------------------------------------------------- TLS that works


async def test_issue11_mail_over_imap_starttls_and_the_answer_over_smtp_starttls(api_tls, tls_server) -> None:
    api = api_tls
    await api.channel("email", tls_server.config(tls=True), name="Поддержка")  # ports not 993/465: STARTTLS
    conversation = await _mail_in(api, tls_server, "<starttls@example.com>")
    assert conversation["kind"] == "email" and conversation["last_message"]["text"] == "Где мой торт?"
    [state] = await api.rows(MailboxState)
    assert state.error is None and state.idle is True
    reply = await _reply(api, conversation["id"], "Курьер будет в 15:00.")
    assert await api.send() == 1
    sent = await _message(api, conversation["id"], reply["id"])
    assert sent["delivery"] == "sent"
    # the server takes mail only after STARTTLS, so its arrival is the proof it went encrypted
    [received] = tls_server.inbox(CUSTOMER)
    assert received["Message-ID"].strip() == sent["external_id"]
    assert received["In-Reply-To"].strip() == "<starttls@example.com>"


async def test_issue11_mail_over_implicit_tls_both_ways_on_chosen_ports(api_tls, tls_server) -> None:
    api = api_tls
    await api.channel("email", tls_server.config(
        tls=True, imap_port=tls_server.imaps_port, imap_security="ssl",
        smtp_port=tls_server.smtps_port, smtp_security="ssl"))
    conversation = await _mail_in(api, tls_server, "<implicit@example.com>")
    [state] = await api.rows(MailboxState)
    assert state.error is None
    reply = await _reply(api, conversation["id"], "Да, доставим сегодня.")
    assert await api.send() == 1
    sent = await _message(api, conversation["id"], reply["id"])
    assert sent["delivery"] == "sent"
    [received] = tls_server.inbox(CUSTOMER)
    assert received["Message-ID"].strip() == sent["external_id"]


@pytest.mark.parametrize("security", ["starttls", "ssl"])
async def test_issue11_imap_idle_over_tls_announces_a_new_mail(tls_server, pki, security) -> None:
    port = tls_server.imaps_port if security == "ssl" else tls_server.imap_port
    config = tls_server.config(tls=True, imap_port=port, imap_security=security)
    stop, result = threading.Event(), []
    thread = threading.Thread(target=lambda: result.append(wait_for_news(
        config, {"password": PASSWORD}, stop, max_seconds=60, timeout=10, ca_file=pki.trusted.ca_file)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not result and time.monotonic() < deadline:  # appended until the watcher is in IDLE
        tls_server.append(SUPPORT, mail("Новое", "Привет", message_id=f"<idle-{time.monotonic_ns()}@example.com>"))
        thread.join(0.5)
    stop.set()
    thread.join(10)
    assert result == [True]


# ---------------------------------------------------------------- TLS that fails


async def test_issue11_an_untrusted_mailbox_certificate_is_kept_as_the_error_and_the_others_still_read(
        api_tls, tls_server, stranger_server) -> None:
    api = api_tls
    stranger = await api.channel("email", stranger_server.config(tls=True), name="Чужой сертификат")
    good = await api.channel("email", tls_server.config(tls=True), name="Поддержка")
    stranger_server.send(mail("Вопрос", "Алло?", message_id="<unseen@example.com>"))
    tls_server.send(mail("Вопрос", "Работаете?", message_id="<seen@example.com>"))
    assert await _poll(api) == 1                       # the good mailbox is read in the same round
    state = await _state(api, stranger["id"])
    assert state.error.startswith("the IMAP server's certificate is not trusted")
    assert (await _state(api, good["id"])).error is None
    listed = {c["id"]: c for c in await api.ok("get", "/channels")}
    assert listed[stranger["id"]]["mailbox"]["error"] == state.error
    api.clock.advance(timedelta(minutes=5))
    assert await _poll(api) == 0                       # tried again next round, the same reason, no crash
    assert (await _state(api, stranger["id"])).error == state.error
    assert await api.count(Delivery) == 1


async def test_issue11_an_answer_to_an_untrusted_smtp_server_fails_at_once_with_the_reason(
        api_tls, tls_server, stranger_server) -> None:
    api = api_tls
    # mail read from the trusted server; answers relayed through the stranger's
    await api.channel("email", tls_server.config(tls=True, smtp_port=stranger_server.smtp_port))
    conversation = await _mail_in(api, tls_server, "<relay@example.com>")
    reply = await _reply(api, conversation["id"], "Перезвоним.")
    assert await api.send() == 1
    message = await _message(api, conversation["id"], reply["id"])
    assert message["delivery"] == "failed"
    assert message["error"].startswith("the SMTP server's certificate is not trusted")
    api.clock.advance(timedelta(hours=1))
    assert await api.send() == 0                       # permanent: not tried again
    assert stranger_server.inbox(CUSTOMER) == [] and tls_server.inbox(CUSTOMER) == []


@pytest.mark.parametrize("security", ["starttls", "ssl"])
async def test_issue11_tls_asked_of_a_server_without_it_fails_clearly_and_never_logs_in_plain(
        api_tls, mailserver, security) -> None:
    api = api_tls
    # the plain test server; IMAP read plainly on purpose so a conversation exists, SMTP asked for TLS
    reader = await api.channel("email", mailserver.config(tls=True, imap_security="none", smtp_security=security))
    conversation = await _mail_in(api, mailserver, f"<plain-{security}@example.com>")
    reply = await _reply(api, conversation["id"], "Ответ")
    assert await api.send() == 1
    message = await _message(api, conversation["id"], reply["id"])
    expected = "does not offer STARTTLS" if security == "starttls" else "no TLS with the SMTP server"
    assert message["delivery"] == "failed" and expected in message["error"], message["error"]
    assert mailserver.inbox(CUSTOMER) == []

    blocked = await api.channel("email", mailserver.config(tls=True, imap_security=security), name="Только TLS")
    assert await _poll(api) == 0
    error = (await _state(api, blocked["id"])).error
    expected = "does not offer STARTTLS" if security == "starttls" else "no TLS with the IMAP server"
    assert expected in error and PASSWORD not in error
    assert (await _state(api, reader["id"])).error is None
