"""A real SMTP + IMAP server on loopback for the e-mail channel tests: PyPI's `mail-devel` (aiosmtpd + pymap,
in memory) in a thread of its own, multi-user (every address its own mailbox, one password), with
`support+*@agency.test` delivered to `support@agency.test` as a provider's plus-addressing does. `smtp_down()` /
`smtp_up()` stop and restart only the SMTP side (a relay that is away for a while).

`MailServer(tls=files)` speaks TLS with that certificate (tests/pki.py): STARTTLS on the IMAP and SMTP ports (SMTP
then refuses mail before STARTTLS, as a provider's submission port does), implicit TLS on `imaps_port` and
`smtps_port`. The IMAP side lets a loopback client log in without TLS (pymap's rule for localhost), which the
helpers below use."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
import ssl
import threading
import time
from contextlib import suppress
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import TYPE_CHECKING

from aiosmtpd.controller import Controller
from mail_devel.service import Service
from proxyprotocol.reader import ProxyProtocolReader
from pymap.imap import IMAPServer
from shared.testing import free_port

if TYPE_CHECKING:   # only a type here; tests/e2e loads this file by path, outside its package
    from .pki import ServerFiles

PASSWORD = "mail-secret"
SUPPORT = "support@agency.test"


class MailServer:
    def __init__(self, tls: ServerFiles | None = None) -> None:
        self.tls = tls
        self.imap_port, self.smtp_port = free_port(), free_port()
        self.imaps_port, self.smtps_port = (free_port(), free_port()) if tls else (0, 0)
        self.service: Service | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def config(self, **overrides) -> dict:
        return {"address": SUPPORT, "imap_host": "127.0.0.1", "imap_port": self.imap_port,
                "smtp_host": "127.0.0.1", "smtp_port": self.smtp_port, "username": SUPPORT,
                "password": PASSWORD, "tls": False, **overrides}

    def start(self) -> None:
        tls = ["--cert", self.tls.cert_file, "--key", self.tls.key_file, "--starttls-required"] if self.tls else []
        args = Service.parse(["--host", "127.0.0.1", "--no-http", "--multi-user", "--password", PASSWORD,
                              "--user", SUPPORT, "--alias", "support+*@agency.test:support@agency.test", *tls])
        args.imap_port, args.smtp_port, args.smtps_port = self.imap_port, self.smtp_port, self.smtps_port

        async def serve() -> None:
            self._stopped = asyncio.Event()
            self.service = await Service.init(args)
            if self.tls:
                # mail-devel builds pymap's config with STARTTLS off and has no IMAPS: both switched on here
                self.service.config._tls_enabled = True
            async with self.service.start():
                imaps = await self._start_imaps() if self.tls else None
                self._ready.set()
                await self._stopped.wait()
                if imaps is not None:
                    imaps.close()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            loop.run_until_complete(serve())
            pending = asyncio.all_tasks(loop)   # open client connections (an IDLE one): closed, then the loop
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=5))
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "mail server did not start"
        deadline = time.monotonic() + 20
        while True:  # the IMAP listener answers
            try:
                imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=5).logout()
                break
            except OSError:
                assert time.monotonic() < deadline, "IMAP did not come up"
                time.sleep(0.05)

    async def _start_imaps(self) -> asyncio.AbstractServer:
        """IMAP over implicit TLS: pymap's own connection handler behind a TLS listener."""
        config = self.service.config
        imap = IMAPServer(self.service.backend.login, config)
        handler = ProxyProtocolReader(config.proxy_protocol).get_callback(imap)
        return await asyncio.start_server(handler, "127.0.0.1", self.imaps_port, ssl=config.ssl_context)

    def client_context(self) -> ssl.SSLContext:
        """A client's context that trusts this server's authority."""
        return ssl.create_default_context(cafile=self.tls.ca_file)

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        for controller in (self.service.smtp, self.service.smtps) if self.service is not None else ():
            if controller is not None:
                with suppress(Exception):
                    controller.stop()  # (already stopped when a test left it down)
        if self._thread is not None:
            self._thread.join(10)

    def smtp_down(self) -> None:
        self.service.smtp.stop()

    def smtp_up(self) -> None:
        old = self.service.smtp  # a stopped Controller has closed its loop: a new one on the same port
        self.service.smtp = Controller(old.handler, hostname=old.hostname, port=old.port, **old.SMTP_kwargs)
        self.service.smtp.start()

    def send(self, message: EmailMessage) -> None:
        """A customer's mail client sends `message` (to our support address, usually)."""
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10) as client:
            if self.tls:
                client.starttls(context=self.client_context())
            client.send_message(message)

    def append(self, user: str, message: EmailMessage) -> None:
        """Put a mail into `user`'s INBOX over IMAP (APPEND), as another mail client or a server-side filter
        does. (mail-devel's SMTP side runs on a loop of its own, so only IMAP-side changes reach IDLE.)"""
        client = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        try:
            client.login(user, PASSWORD)
            client.append("INBOX", None, None, message.as_bytes())
        finally:
            client.logout()

    def inbox(self, user: str) -> list[EmailMessage]:
        """Every message in `user`'s INBOX, oldest first, parsed."""
        client = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        try:
            client.login(user, PASSWORD)
            client.select("INBOX", readonly=True)
            _, data = client.uid("SEARCH", None, "ALL")
            out = []
            for uid in (data[0] or b"").split():
                _, parts = client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
                raw = next(p[1] for p in parts if isinstance(p, tuple))
                out.append(message_from_bytes(raw, policy=policy.default))
            return out
        finally:
            client.logout()


def mail(subject: str, text: str, *, sender: str = "Ann Petrova <ann@example.com>", to: str = SUPPORT,
         message_id: str, in_reply_to: str | None = None, references: str | None = None,
         html: str | None = None, date: str = "05:30") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = message_id
    message["Date"] = f"Mon, 02 Mar 2026 {date}:00 +0000"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    if html is not None and text == "":
        message.set_content(html, subtype="html")
    else:
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
    return message
