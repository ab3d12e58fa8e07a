"""The care inbox's rules as plain functions (EN-2, issue 11): statuses, config keys, windows, retries."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta

from shared import messages as M

OPEN, WAITING_CLIENT, RESOLVED = "open", "waiting_client", "resolved"
STATUSES = (OPEN, WAITING_CLIENT, RESOLVED)
KINDS = ("instagram", "telegram", "vk", "email", "webform", "monitoring")

# Issue 11's API contract: the config keys of each channel kind, and which of them are secrets.
CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "instagram": ("ig_user_id", "access_token"),
    "telegram": ("bot_token", "secret_token"),
    "vk": ("group_id", "access_token", "secret", "confirmation"),
    "email": ("address", "imap_host", "imap_port", "smtp_host", "smtp_port", "username", "password", "tls"),
    "webform": ("email_channel_id",),  # the e-mail channel its answers go out through
}
OPTIONAL_KEYS: dict[str, tuple[str, ...]] = {
    "webform": ("slug",),                           # the form's public address /f/{slug}
    "email": ("imap_security", "smtp_security"),    # overrides `tls` for one side (channels/email.py)
}
# How an e-mail connection is protected, as mail clients name it: TLS from the first byte, an upgrade, or none.
MAIL_SECURITY = ("ssl", "starttls", "none")
SECRET_KEYS = {"access_token", "bot_token", "secret_token", "secret", "confirmation", "password"}
WEBHOOK_SECRET_KEY = {"telegram": "secret_token", "vk": "secret"}  # checked on every inbound delivery
EXTERNAL_ID_KEY = {"instagram": "ig_user_id", "vk": "group_id", "email": "address", "webform": "slug"}
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")

DIRECT_WINDOW = timedelta(hours=24)  # Instagram messaging: answer within 24 hours of the user's last message


def missing_config_keys(kind: str, config: dict) -> list[str]:
    return [key for key in CONFIG_KEYS[kind] if config.get(key) in (None, "")]


def config_errors(kind: str, config: dict) -> list[dict[str, str]]:
    """Values of the wrong shape (after `missing_config_keys`): e-mail ports are numbers 1-65535, `tls` a
    boolean, `imap_security` / `smtp_security` (when given) one of `MAIL_SECURITY`, the address an e-mail address;
    a website form's slug is lowercase letters, digits and dashes."""
    errors = []
    if kind == "email":
        for key in ("imap_port", "smtp_port"):
            value = config.get(key)
            if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())) \
                    or not 0 < int(value) < 65536:
                errors.append(M.item(f"config.{key}", M.PORT))
        if not isinstance(config.get("tls"), bool):
            errors.append(M.item("config.tls", M.BOOLEAN))
        for key in OPTIONAL_KEYS["email"]:
            if config.get(key) not in (None, "", *MAIL_SECURITY):
                errors.append(M.item(f"config.{key}", M.MAIL_SECURITY, choices=", ".join(MAIL_SECURITY)))
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(config.get("address", ""))):
            errors.append(M.item("config.address", M.EMAIL))
    if kind == "webform" and config.get("slug") not in (None, "") and not SLUG_RE.fullmatch(str(config["slug"])):
        errors.append(M.item("config.slug", M.SLUG))
    return errors


def split_config(kind: str, config: dict) -> tuple[dict, dict[str, str]]:
    """(public, secret): only the contract's keys are kept; secrets go to the encrypted blob."""
    public, secret = {}, {}
    for key in OPTIONAL_KEYS.get(kind, ()):
        if config.get(key) not in (None, ""):
            public[key] = config[key]
    if kind == "email":
        config = {**config, "imap_port": int(config["imap_port"]), "smtp_port": int(config["smtp_port"]),
                  "address": str(config["address"]).strip().lower()}
    for key in CONFIG_KEYS[kind]:
        if key in SECRET_KEYS:
            secret[key] = str(config[key])
        else:
            public[key] = config[key]
    return public, secret


def status_after_inbound(status: str) -> str:
    """EN-2: a new customer message reopens a resolved conversation and ends the wait for the client."""
    return OPEN


def direct_window_open(last_inbound_at: datetime | None, now: datetime) -> bool:
    return last_inbound_at is not None and now - last_inbound_at <= DIRECT_WINDOW


def response_seconds(waiting_since: datetime, answered_at: datetime) -> int:
    return max(0, int((answered_at - waiting_since).total_seconds()))


def vk_random_id(message_id: str) -> int:
    """VK's anti-duplicate `random_id` (int64 range): a 63-bit hash of our message id, so a retry of the same
    message is recognised by VK and never doubles it."""
    return int.from_bytes(hashlib.sha256(message_id.encode()).digest()[:8], "big") & ((1 << 63) - 1)


def backoff_seconds(attempt: int) -> int:
    """Wait before retry number `attempt` (1, 2, …): 2, 4, 8 … up to 5 minutes."""
    return min(2 ** attempt, 300)


def meta_signature_valid(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>`, constant-time."""
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[len("sha256="):].strip().lower(), expected)


def normalise_tag(tag: str) -> str:
    return " ".join(tag.strip().lower().split())[:100]


DEFAULT_OPEN_CAP = 20  # open conversations per agent before round-robin skips them (an agency default)


def pick_round_robin(candidates: list[tuple[str, int, int, datetime | None]]) -> str | None:
    """Round-robin among agents on shift under their cap: (login, open_count, cap, last_assigned_at) → the one
    given a conversation longest ago (never first), ties by login; None when everyone is at their cap."""
    free = [c for c in candidates if c[1] < c[2]]
    if not free:
        return None
    return min(free, key=lambda c: (c[3] is not None, c[3] or datetime.min, c[0]))[0]


TELEGRAM_PER_CHAT_SECONDS = 1.0   # "avoid sending more than one message per second" in a chat
TELEGRAM_GROUP_PER_MINUTE = 20    # "bots are not able to send more than 20 messages per minute" in a group


def telegram_wait(sent_at: list[datetime], now: datetime, group: bool) -> float:
    """Seconds to wait before the next message to one chat, given when we sent to it before (Bots FAQ limits)."""
    if not sent_at:
        return 0.0
    wait = TELEGRAM_PER_CHAT_SECONDS - (now - max(sent_at)).total_seconds()
    if group:
        recent = sorted(t for t in sent_at if (now - t).total_seconds() < 60)
        if len(recent) >= TELEGRAM_GROUP_PER_MINUTE:
            wait = max(wait, 60 - (now - recent[-TELEGRAM_GROUP_PER_MINUTE]).total_seconds())
    return max(0.0, wait)


TAG_RULE_KINDS = ("keyword", "channel", "account", "campaign")


def matching_tags(rules_: list[tuple[str, str, str]], *, text: str, channel_kind: str, account: str,
                  campaign: str | None) -> set[str]:
    """EN-7: the tags of the rules (kind, value, tag) a customer's message matches; keywords case-insensitively."""
    lowered = text.lower()
    tags = set()
    for kind, value, tag in rules_:
        if ((kind == "keyword" and value.lower() in lowered) or (kind == "channel" and value == channel_kind)
                or (kind == "account" and value == account)
                or (kind == "campaign" and campaign is not None and value.lower() == campaign.lower())):
            tags.add(tag)
    return tags
