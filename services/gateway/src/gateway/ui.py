"""Small helpers the business pages share: service error messages for forms, months, money, pages of a
list (paged by the service), and the geometry of the server-rendered SVG bar charts (no JS chart library)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Request

from gateway.i18n import N_, _
from gateway.service_client import ServiceError

# Service messages the pages know how to say in the user's language; anything else is shown as sent.
KNOWN_MESSAGES = {
    "required": N_("Required."),
    "missing": N_("Required."),
    "must be ISO-8601 with a UTC offset": N_("Enter a valid date and time."),
    "not an e-mail address": N_("Enter an e-mail address like name@example.kz."),
    "not a phone number": N_("Enter a phone number like +7 701 123 45 67."),
    "BIN/IIN is 12 digits": N_("A BIN/IIN is 12 digits."),
}


def say(message: str) -> str:
    known = KNOWN_MESSAGES.get(message.strip())
    return _(known) if known else message


def form_errors(exc: ServiceError, default_field: str = "form") -> dict[str, str]:
    """A service's 4xx as {field: message} for a form; a refusal without a field goes to `default_field`."""
    errors: dict[str, str] = {}
    for item in exc.errors:
        field = str(item.get("field") or default_field)
        field = field.removeprefix("client.")
        from gateway.messages import say_item

        message = say_item(item)
        errors[field] = f"{errors[field]} {message}" if field in errors else message
    if not errors:
        errors[default_field] = say(exc.detail)
    return errors


# ------------------------------------------------------------------ time

def parse_ts(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def month_of(now: datetime, request: Request) -> str:
    return request.app.state.settings.calendar.local(now).strftime("%Y-%m")


def valid_month(value: str | None) -> str | None:
    if not value:
        return None
    try:
        date.fromisoformat(value + "-01")
    except ValueError:
        return None
    return value if len(value) == 7 else None


def shift_month(month: str, delta: int) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    index = year * 12 + (mon - 1) + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def recent_months(month: str, count: int = 12) -> list[str]:
    return [shift_month(month, -i) for i in range(count)]


# ------------------------------------------------------------------ money

def to_decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def money(value: Any, currency: str = "") -> str:
    """150000.00 -> "150 000", 1234.5 -> "1 234.50" (a narrow no-break space between thousands)."""
    amount = to_decimal(value)
    text = f"{amount:,.2f}" if amount != amount.to_integral_value() else f"{amount:,.0f}"
    text = text.replace(",", "\u202f").replace("-", "−")
    return f"{text} {currency}".strip()


# ------------------------------------------------------------------ lists

@dataclass(frozen=True)
class PageOf:
    items: list[Any]
    page: int
    pages: int
    total: int
    size: int


def page_number(raw: str | None) -> int:
    try:
        return max(1, int(raw or 1))
    except ValueError:
        return 1


def page_of(items: list[Any], page: int, size: int, total: int) -> PageOf:
    """One page a service returned (server-side paging), with the total it counted."""
    return PageOf(items, page, max(1, -(-total // size)), total, size)


# ------------------------------------------------------------------ charts

def bar_chart(rows: list[tuple[str, float, str]], width: int = 640, bar: int = 22, gap: int = 10,
              label_width: int = 170, value_width: int = 150) -> dict[str, Any]:
    """Horizontal bars: rows of (label, value, caption shown after the bar). Negative values draw no bar."""
    top = max((value for _label, value, _caption in rows), default=0) or 1
    track = width - label_width - value_width
    bars = []
    for i, (label, value, caption) in enumerate(rows):
        length = max(0.0, value) / top * track if top > 0 else 0
        bars.append({"label": label, "caption": caption, "y": i * (bar + gap), "w": round(max(length, 0), 1),
                     "value": value})
    return {"width": width, "height": max(len(rows) * (bar + gap) - gap, bar), "bar": bar,
            "label_width": label_width, "bars": bars}
