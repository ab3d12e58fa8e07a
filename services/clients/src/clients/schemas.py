"""Request bodies of the clients API (msgspec Structs).

Type errors are caught by msgspec (422 naming the field). Presence and cross-field rules (a legal
entity needs its BIN, a launch needs its credentials) are checked by `validate_*` functions that list
every missing field at once, so one 422 tells the caller everything to fix.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
from shared.errors import DomainError

from shared import messages as M

ServiceKind = Literal["account_management", "complex_promotion"]
PayerType = Literal["individual", "legal"]


class ClientIn(msgspec.Struct, kw_only=True):
    full_name: str | None = None
    phone: str | None = None
    instagram: str | None = None
    email: str | None = None
    payer_type: PayerType | None = None
    company_name: str | None = None
    bin: str | None = None
    notes: str | None = None
    product: str | None = None


class ClientPatchIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """CL-1: the client card fields to change; a field left out stays as it is."""

    full_name: str | None = None
    phone: str | None = None
    instagram: str | None = None
    email: str | None = None
    payer_type: PayerType | None = None
    company_name: str | None = None
    bin: str | None = None
    notes: str | None = None


class ChecklistTickIn(msgspec.Struct, kw_only=True):
    item: str | None = None
    done: bool | None = None


class PaymentIn(msgspec.Struct, kw_only=True):
    external_id: str | None = None
    paid_at: datetime | None = None
    amount: str | None = None
    currency: str | None = None
    service_kind: ServiceKind | None = None
    client: ClientIn | None = None
    deal_id: str | None = None
    lead_id: str | None = None
    responsible_manager: str | None = None


class StageIn(msgspec.Struct, kw_only=True):
    stage: Literal["new", "contacted", "questionnaire_received", "project_launched", "notification_sent",
                   "lost"] | None = None
    at: datetime | None = None
    service_start: date | None = None
    instagram_login: str | None = None
    instagram_password: str | None = None


class QuestionnaireIn(msgspec.Struct, kw_only=True):
    answers: dict[str, Any] | None = None
    received_at: datetime | None = None


class RefundIn(msgspec.Struct, kw_only=True):
    external_id: str | None = None
    amount: str | None = None
    currency: str | None = None
    refunded_at: datetime | None = None


class CompleteIn(msgspec.Struct, kw_only=True):
    at: datetime | None = None
    note: str | None = None


class FirstPostIn(msgspec.Struct, kw_only=True):
    published_at: datetime | None = None


class RenewalAnswerIn(msgspec.Struct, kw_only=True):
    continues: bool | None = None
    at: datetime | None = None


class WaiveIn(msgspec.Struct, kw_only=True):
    reason: str | None = None


class ManagerIn(msgspec.Struct, kw_only=True):
    manager: str | None = None


class StaffIn(msgspec.Struct, kw_only=True):
    role: Literal["content_manager", "ad_manager", "growth"] | None = None
    full_name: str = ""
    active: bool = True


class SettingsIn(msgspec.Struct, kw_only=True):
    values: dict[str, Any] | None = None
    effective_from: datetime | None = None


class LeadIn(msgspec.Struct, kw_only=True):
    full_name: str | None = None
    phone: str | None = None
    instagram: str | None = None
    email: str | None = None
    product: str | None = None
    payer_type: PayerType = "individual"
    company_name: str | None = None
    bin: str | None = None
    notes: str | None = None
    source: str | None = None
    owner: str | None = None
    at: datetime | None = None


class LeadStageIn(msgspec.Struct, kw_only=True):
    stage: Literal["dialog", "warm_lead", "application", "paid"] | None = None
    at: datetime | None = None


# ----------------------------------------------------------------------------- validation helpers

class Errors:
    """Collects field errors; `raise_if_any` raises one 422 listing them all."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field: str, code: str, /, **params: Any) -> None:
        """One field's error: a message code (shared.messages) and its parameters."""
        self.items.append(M.item(field, code, **params))

    def require(self, field: str, value: object) -> None:
        if value is None or (isinstance(value, str) and not value.strip()):
            self.add(field, M.REQUIRED)

    def raise_if_any(self, message: str = "invalid request") -> None:
        if self.items:
            raise DomainError(message, errors=self.items)


def check_aware(errors: Errors, field: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        errors.add(field, M.DATETIME)


MAX_AMOUNT_DIGITS = 12   # amounts are stored as Numeric(14, 2): 12 digits before the point


def parse_money(errors: Errors, field: str, raw: str | None) -> Decimal | None:
    """PAY-9: money is exact: a positive decimal with at most two places and 12 digits before the point,
    given as a string (issue 8 item 10: `1e999999` or 40 digits is a 422, never a failed quantize)."""
    if raw is None:
        return None
    text = str(raw).strip()
    try:
        value = Decimal(text) if len(text) <= 64 else None
    except InvalidOperation:
        value = None
    if value is None:
        errors.add(field, M.AMOUNT_DECIMAL)
        return None
    if not value.is_finite() or value <= 0:
        errors.add(field, M.AMOUNT_POSITIVE)
        return None
    if value.adjusted() >= MAX_AMOUNT_DIGITS:
        errors.add(field, M.AMOUNT_DIGITS, digits=MAX_AMOUNT_DIGITS)
        return None
    if value.as_tuple().exponent < -2 and value != value.quantize(Decimal("0.01")):
        errors.add(field, M.AMOUNT_CENTS)
        return None
    return value.quantize(Decimal("0.01"))


# ----------------------------------------------------------------------------- links (issue 8 item 5)

INSTAGRAM_HOSTS = ("instagram.com", "www.instagram.com")
INSTAGRAM_HANDLE = re.compile(r"@?([A-Za-z0-9._]{1,30})")
MAX_URL_LENGTH = 2048


class LinkError(ValueError):
    """A link is refused: `code` (shared.messages) and its parameters say why."""

    def __init__(self, code: str, /, **params: Any) -> None:
        super().__init__(M.text(code, **params))
        self.code, self.params = code, params


def clean_url(raw: str, hosts: tuple[str, ...] | None = None) -> str:
    """An absolute http(s) link to a host (one of `hosts` if given), else LinkError with the reason.

    Control and format characters (tabs, newlines, zero-width and direction marks), backslashes, spaces
    and credentials in the link are refused, so what is stored is what a browser would open."""
    value = raw.strip()
    if len(value) > MAX_URL_LENGTH:
        raise LinkError(M.LINK_TOO_LONG, limit=MAX_URL_LENGTH)
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value):
        raise LinkError(M.LINK_CONTROL)
    if "\\" in value or any(c.isspace() for c in value):
        raise LinkError(M.LINK_SPACES)
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
        _ = parts.port
    except ValueError:
        raise LinkError(M.LINK_NOT_VALID) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise LinkError(M.LINK_SCHEME)
    if not host or parts.username is not None or parts.password is not None:
        raise LinkError(M.LINK_HOST)
    if hosts is not None and host not in hosts:
        raise LinkError(M.LINK_HOSTS, hosts=" or ".join(hosts))
    return value


def clean_instagram(raw: str) -> str:
    """The Instagram field: an https link to instagram.com / www.instagram.com. A bare handle (`@name` or
    `name`) and a link without its scheme (`instagram.com/name`) are normalised to `https://instagram.com/…`."""
    value = raw.strip()
    if not value:
        return ""
    if (handle := INSTAGRAM_HANDLE.fullmatch(value)) and not handle.group(1).strip("."):
        raise LinkError(M.INSTAGRAM_HANDLE)
    if handle:
        return f"https://instagram.com/{handle.group(1)}"
    if value.lower().startswith(tuple(f"{h}/" for h in INSTAGRAM_HOSTS)):
        value = "https://" + value
    return clean_url(value, INSTAGRAM_HOSTS)


def check_instagram(errors: Errors, field: str, raw: str | None) -> str | None:
    """`clean_instagram` for a request field: the normalised value, or the raw one with an error added."""
    if raw is None:
        return None
    try:
        return clean_instagram(raw)
    except LinkError as exc:
        errors.add(field, exc.code, **exc.params)
        return raw


def check_currency(errors: Errors, field: str, raw: str | None) -> str | None:
    if raw is None:
        return None
    if not re.fullmatch(r"[A-Z]{3}", raw):
        errors.add(field, M.CURRENCY_CODE)
        return None
    return raw


def validate_client(errors: Errors, client: ClientIn | None, prefix: str = "client") -> None:
    """CL-1: the client card; a legal entity needs its company name and BIN/IIN (12 digits)."""
    if client is None:
        errors.add(prefix, M.CLIENT_REQUIRED)
        return
    for name in ("full_name", "phone", "payer_type"):
        errors.require(f"{prefix}.{name}", getattr(client, name))
    client.instagram = check_instagram(errors, f"{prefix}.instagram", client.instagram)
    if client.email and "@" not in client.email:
        errors.add(f"{prefix}.email", M.EMAIL)
    if client.payer_type == "legal":
        errors.require(f"{prefix}.company_name", client.company_name)
        errors.require(f"{prefix}.bin", client.bin)
    if client.bin and not re.fullmatch(r"\d{12}", client.bin):
        errors.add(f"{prefix}.bin", M.BIN_LENGTH)


EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PHONE = re.compile(r"\+?[\d\s()\-]{7,25}")


def validate_card(errors: Errors, card: dict[str, Any]) -> None:
    """CL-1: a whole client card as it would be after an edit: name and phone present, the e-mail and
    phone well-formed, a legal entity with its company name and a 12-digit BIN/IIN."""
    errors.require("full_name", card["full_name"])
    errors.require("phone", card["phone"])
    if card.get("instagram"):
        card["instagram"] = check_instagram(errors, "instagram", card["instagram"])
    phone = (card["phone"] or "").strip()
    if phone and (not PHONE.fullmatch(phone) or not 7 <= sum(c.isdigit() for c in phone) <= 15):
        errors.add("phone", M.PHONE)
    if card["email"] and not EMAIL.fullmatch(card["email"].strip()):
        errors.add("email", M.EMAIL)
    if card["payer_type"] == "legal":
        errors.require("company_name", card["company_name"])
        errors.require("bin", card["bin"])
    if card["bin"] and not re.fullmatch(r"\d{12}", card["bin"].strip()):
        errors.add("bin", M.BIN_LENGTH)


# ----------------------------------------------------------------------------- list paging

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
MAX_OFFSET = 2**31 - 1   # issue 8 item 10: far past any list, far below SQLite's 64-bit integers


class Page(msgspec.Struct, frozen=True):
    """A list request's window and order: `limit` rows from `offset`, by `sort` (a field of the
    list's whitelist; `-field` for descending)."""

    limit: int
    offset: int
    sort: str
    descending: bool


def parse_page(limit: int | None, offset: int | None, sort: str | None, allowed: tuple[str, ...],
               default_sort: str) -> Page:
    """limit 1…200 (default 50), offset ≥ 0, sort from `allowed`: one 422 naming every bad field."""
    errors = Errors()
    limit = DEFAULT_LIMIT if limit is None else limit
    offset = 0 if offset is None else offset
    if not 1 <= limit <= MAX_LIMIT:
        errors.add("limit", M.LIST_LIMIT, max=MAX_LIMIT)
    if not 0 <= offset <= MAX_OFFSET:
        errors.add("offset", M.LIST_OFFSET, max=MAX_OFFSET)
    raw = (sort or default_sort).strip()
    name = raw.removeprefix("-")
    if name not in allowed:
        errors.add("sort", M.LIST_SORT, choices=", ".join(allowed))
    errors.raise_if_any()
    return Page(limit=limit, offset=offset, sort=name, descending=raw.startswith("-"))
