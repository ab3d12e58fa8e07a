"""E-mail (issue 11 §e-mail, CHANNELS.md §5): parse a fetched RFC 5322 message into what the inbox keeps, and send
an answer over SMTP.

Threading keys (resolved against the database in `engagement.mailbox.process_mail`): `In-Reply-To` first, then
every `References` id, then a reply+token address among the recipients (`support+<token>@agency.example`, the
`Reply-To` of every answer we send, for mail clients that drop the headers). A conversation's token is derived from
the Message-ID of the mail that opened it; our own Message-IDs carry it too (`<message-uuid.token@domain>`).

Every MIME part with a filename is an attachment of the message, its bytes kept as they came (no fetch).

The text kept is the plain-text part (an HTML-only mail is turned into text) with the quoted history removed:
`>` lines, and everything from an attribution line ("On … wrote:", "… пишет:", "-----Original Message-----",
Outlook's "From: …" block) or a signature delimiter ("-- ") down.

Connection security, per side as mail clients offer it (`connection_security`): `imap_security` /
`smtp_security` = "ssl" (TLS from the first byte: IMAPS, SMTPS), "starttls" (plain, then upgraded) or "none" decide
when given; otherwise `tls` does — true: implicit TLS on the well-known ports 993 / 465 and STARTTLS on any other,
false: plain (a relay on the local network). So a provider that serves SSL/TLS on another port (a port-forwarded
993) sets `imap_security: "ssl"`; existing configs with only `tls` keep their meaning. A server's certificate is
checked against the system's authorities plus the file in `ENGAGEMENT_MAIL_CA_FILE` (an agency's own authority).

Sending: transient failures — a 4xx answer, a refused or dropped connection, a timeout — are retried by the
sender; a 5xx answer is permanent, with the server's words, and so is a TLS failure (an untrusted certificate, no
STARTTLS offered, no TLS on that port): it is the channel's configuration, not the weather.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formataddr, getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from engagement.channels import InboundFile, Outgoing, Permanent, Retry
from engagement.rules import MAIL_SECURITY

MAX_REFERENCES = 20
ID_RE = re.compile(r"<[^<>\s]+>")
IMPLICIT_TLS_PORTS = {"imap": 993, "smtp": 465}


@dataclass
class Mail:
    message_id: str
    in_reply_to: list[str]
    references: list[str]
    recipients: list[str]
    from_name: str
    from_address: str
    subject: str
    text: str
    at: datetime
    auto_reply: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    attachments: list[InboundFile] = field(default_factory=list)


def message_ids(value: str | None) -> list[str]:
    """The `<id>`s of a header, in order, without duplicates (some senders put several in In-Reply-To)."""
    seen: list[str] = []
    for found in ID_RE.findall(str(value or "")):
        if found not in seen:
            seen.append(found)
    return seen


def thread_token(root_message_id: str) -> str:
    """The token of a conversation: 20 hex characters of the SHA-256 of the Message-ID that opened it."""
    return hashlib.sha256(root_message_id.encode()).hexdigest()[:20]


def token_address(address: str, token: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local}+{token}@{domain}"


def tokens_in(recipients: list[str], address: str) -> list[str]:
    """Tokens of `local+token@domain` recipients of our own address."""
    local, _, domain = address.lower().partition("@")
    found = []
    for recipient in recipients:
        r_local, _, r_domain = recipient.lower().partition("@")
        base, plus, token = r_local.partition("+")
        if plus and base == local and r_domain == domain and re.fullmatch(r"[0-9a-f]{20}", token):
            found.append(token)
    return found


def our_message_id(message_id: str, token: str, address: str) -> str:
    return f"<{message_id}.{token}@{address.partition('@')[2] or 'zabota.local'}>"


def token_of_our_id(value: str) -> str | None:
    """The thread token inside one of our own Message-IDs (`<uuid.token@domain>`), if it is one."""
    match = re.fullmatch(r"<[0-9a-f-]{36}\.([0-9a-f]{20})@[^>]+>", value)
    return match.group(1) if match else None


class _TextOfHtml(HTMLParser):
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul", "ol"}
    VOID = {"br", "img", "hr", "meta", "input", "link", "wbr", "col", "area", "base", "source"}
    HIDDEN = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.stack: list[str] = []
        self.hidden_at: int | None = None  # depth where a hidden or quoted element began

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCK:
            self.parts.append("\n")
        if tag in self.VOID:
            return
        self.stack.append(tag)
        classes = " ".join(v or "" for k, v in attrs if k == "class")
        quoted = tag == "blockquote" or "gmail_quote" in classes or "moz-cite-prefix" in classes
        if self.hidden_at is None and (tag in self.HIDDEN or quoted):
            self.hidden_at = len(self.stack)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCK:
            self.parts.append("\n")
        if tag in self.VOID or tag not in self.stack:
            return
        while self.stack:
            if self.hidden_at is not None and len(self.stack) <= self.hidden_at:
                self.hidden_at = None
            if self.stack.pop() == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.hidden_at is None:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Readable text of an HTML mail: scripts, styles and quoted history (`<blockquote>`, Gmail's and
    Thunderbird's quote containers) dropped, block elements as line breaks, entities decoded."""
    parser = _TextOfHtml()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # malformed markup: fall back to stripping tags
        return html.unescape(re.sub(r"<[^>]+>", " ", markup))
    text = "".join(parser.parts)
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


ATTRIBUTION = [
    re.compile(r"^\s*on\b.{0,300}\bwrote:\s*$", re.I),
    re.compile(r"^.{0,300}\b(пишет|написал|написала)\s*:\s*$", re.I),
    re.compile(r"^\s*-{2,}\s*(original message|исходное сообщение|пересылаемое сообщение)\s*-{2,}\s*$", re.I),
    re.compile(r"^\s*(from|от|de|von)\s*:\s*.+$", re.I),
    re.compile(r"^\s*_{10,}\s*$"),
    re.compile(r"^.{0,300}\d{4}.{0,100}<[^>]+@[^>]+>\s*:?\s*$"),  # "1 дек. 2026 г., в 10:00, Ann <a@b>:"
]


def strip_quoted(text: str) -> str:
    """The new part of a reply: `>` lines dropped, cut at an attribution line or a signature delimiter.
    A mail that is nothing but a quote keeps its text (better a quote than an empty message)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if line.rstrip() == "--" and line.startswith("--"):
            break  # "-- " signature delimiter
        if any(p.match(line) for p in ATTRIBUTION):
            # Outlook's "From:" block only counts after the first lines of the new text
            if index > 0 or not line.lower().lstrip().startswith(("from", "от", "de", "von")):
                break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    result = "\n".join(kept).strip()
    return result or text.strip()


def _body_text(message: Any) -> str:
    part = message.get_body(preferencelist=("plain",))
    if part is not None:
        try:
            return str(part.get_content())
        except (LookupError, UnicodeError):
            return part.get_payload(decode=True).decode("utf-8", "replace")
    part = message.get_body(preferencelist=("html",))
    if part is not None:
        try:
            return html_to_text(str(part.get_content()))
        except (LookupError, UnicodeError):
            return html_to_text(part.get_payload(decode=True).decode("utf-8", "replace"))
    return ""


def attachments_of(message: Any) -> list[InboundFile]:
    """The parts with a filename (attachments, and inline images that have one), decoded."""
    files: list[InboundFile] = []
    for part in message.walk():
        if part.is_multipart() or not part.get_filename():
            continue
        try:
            data = part.get_payload(decode=True) or b""
        except Exception:  # a part its sender mangled: the rest of the mail still counts
            continue
        files.append(InboundFile("file", str(part.get_filename()), part.get_content_type(), len(data), data=data))
    return files


def parse(raw: bytes, now: datetime) -> Mail:
    message = message_from_bytes(raw, policy=policy.default)
    message_id = (message_ids(message.get("Message-ID")) or [f"<sha256.{hashlib.sha256(raw).hexdigest()}@zabota>"])[0]
    recipients = [a for _, a in getaddresses([str(v) for k in ("To", "Cc", "Delivered-To", "X-Original-To")
                                              for v in message.get_all(k, [])]) if a]
    [(from_name, from_address)] = getaddresses([str(message.get("From", ""))])[:1] or [("", "")]
    try:
        at = parsedate_to_datetime(str(message.get("Date"))) if message.get("Date") else now
        at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    except (TypeError, ValueError):
        at = now
    if at > now:
        at = now  # a sender's clock ahead of ours must not put the mail in the future
    auto = str(message.get("Auto-Submitted", "no")).lower() not in ("", "no") or \
        str(message.get("Precedence", "")).lower() in ("bulk", "junk", "auto_reply")
    return Mail(message_id=message_id, in_reply_to=message_ids(message.get("In-Reply-To")),
                references=message_ids(message.get("References")), recipients=recipients,
                from_name=str(from_name), from_address=str(from_address).lower(),
                subject=str(message.get("Subject", "")).strip(), text=strip_quoted(_body_text(message)), at=at,
                auto_reply=auto, attachments=attachments_of(message))


def reply_subject(subject: str) -> str:
    subject = subject.strip() or "(без темы)"
    return subject if re.match(r"^\s*(re|ответ|aw|sv)\s*:", subject, re.I) else f"Re: {subject}"


def build_reply(config: dict[str, Any], sender_name: str, out: Outgoing) -> tuple[EmailMessage, str]:
    """The answer with our own Message-ID, In-Reply-To the customer's last mail, References the thread (capped),
    and a reply+token Reply-To."""
    target = out.target
    address = str(config["address"])
    token = str(target.get("token") or thread_token(out.message_id))
    message = EmailMessage()
    message["From"] = formataddr((sender_name, address))
    message["To"] = formataddr((str(target.get("name") or ""), str(target["to"])))
    message["Reply-To"] = token_address(address, token)
    subject = str(target.get("subject") or "")
    message["Subject"] = subject if target.get("new_thread") else reply_subject(subject)
    ours = our_message_id(out.message_id, token, address)
    message["Message-ID"] = ours
    parent = target.get("in_reply_to")
    references = [r for r in (target.get("references") or []) if isinstance(r, str)]
    if parent:
        message["In-Reply-To"] = parent
        if parent not in references:
            references.append(parent)
    if references:
        message["References"] = " ".join(references[-MAX_REFERENCES:])
    message["Date"] = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    message["Auto-Submitted"] = "no"
    message.set_content(out.text)
    for f in out.files:
        main, _, sub = (f.content_type or "application/octet-stream").partition("/")
        message.add_attachment(f.data, maintype=main, subtype=sub or "octet-stream", filename=f.name)
    return message, ours


def connection_security(config: dict[str, Any], side: str) -> str:
    """How the `side` ("imap" or "smtp") connection is protected: "ssl", "starttls" or "none" (module docstring)."""
    chosen = config.get(f"{side}_security")
    if chosen in MAIL_SECURITY:
        return str(chosen)
    if not config.get("tls"):
        return "none"
    return "ssl" if int(config[f"{side}_port"]) == IMPLICIT_TLS_PORTS[side] else "starttls"


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Certificates verified against the system's authorities, plus the agency's own (`ca_file`) when it has one:
    added to the system's, not instead of them, so the other channels' public certificates still verify."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def _deliver(config: dict[str, Any], secrets: dict[str, str], message: EmailMessage, timeout: float,
             ca_file: str | None = None) -> None:
    host, port = str(config["smtp_host"]), int(config["smtp_port"])
    security = connection_security(config, "smtp")
    context = tls_context(ca_file) if security != "none" else None
    client: smtplib.SMTP
    if security == "ssl":
        client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    try:
        client.ehlo()
        if security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if secrets.get("password") and client.has_extn("auth"):
            client.login(str(config["username"]), secrets["password"])
        client.send_message(message)
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


def _classify(exc: Exception) -> Exception:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = list(exc.recipients.values())
        reason = "; ".join(f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
                           for code, msg in answers)
        if all(400 <= code < 500 for code, _ in answers):
            return Retry(f"recipient refused for now: {reason}")
        return Permanent(f"recipient refused: {reason}")
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        reason = f"SMTP {exc.smtp_code} {text}".strip()
        return Retry(reason) if 400 <= exc.smtp_code < 500 or exc.smtp_code < 0 else Permanent(reason)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Permanent(f"the SMTP server's certificate is not trusted: {exc.verify_message}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return Permanent(f"the SMTP server does not offer STARTTLS: {exc}")
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        # e.g. WRONG_VERSION_NUMBER: the server answered in plain text, so SSL/TLS is not what this port speaks
        return Permanent(f"no TLS with the SMTP server ({exc.reason or exc}): check the port and the connection "
                         "security (ssl / starttls)")
    if isinstance(exc, smtplib.SMTPServerDisconnected | OSError | TimeoutError):
        return Retry(f"SMTP server unreachable: {type(exc).__name__}: {exc}"[:300])
    return Retry(f"SMTP: {type(exc).__name__}")


async def send(config: dict[str, Any], secrets: dict[str, str], sender_name: str, out: Outgoing,
               timeout: float = 30.0, ca_file: str | None = None) -> str:
    """Deliver an answer (blocking smtplib in a worker thread); returns our Message-ID, kept as the message's
    external id so the customer's reply to it threads back. `ca_file`: an extra authority to trust."""
    if not out.target.get("to"):
        raise Permanent("the customer left no e-mail address to answer to")
    message, ours = build_reply(config, sender_name, out)
    try:
        await asyncio.to_thread(_deliver, config, secrets, message, timeout, ca_file)
    except Exception as exc:
        raise _classify(exc) from exc
    return ours
