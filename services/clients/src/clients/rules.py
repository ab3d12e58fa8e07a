"""The rules of the clients service as pure functions: no HTTP, no database, no clock (DESIGN 2).

Each function cites the rule it implements. Numbers come from `RuleValues` — the agency's settings in
effect at the moment of the fact (DOMAIN: "every number is a default"), never from constants here.
"""

from __future__ import annotations

import calendar as _cal
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from shared.agency import check_bik, check_bin, check_iban, normalize_iban
from shared.agency_calendar import build as build_calendar
from shared.calendar import BusinessCalendar, _parse_holidays, _parse_hours, _parse_tz, _parse_workdays

from shared import messages as M

STAGES = ("new", "contacted", "questionnaire_received", "project_launched", "notification_sent", "lost")
SERVICE_KINDS = ("account_management", "complex_promotion")
PAYER_TYPES = ("individual", "legal")
LEAD_STAGES = ("dialog", "warm_lead", "application", "paid")
ASSIGNABLE_ROLES = ("content_manager", "ad_manager", "growth")


@dataclass(frozen=True)
class RuleValues:
    """The agency's numbers (DOMAIN defaults). Stored as `rule_settings` rows with an effective date."""

    first_call_within_hours: float = 1            # CL-3
    first_call_morning: str = "11:00"             # CL-3
    first_call_next_morning_working_day: bool = False  # CL-3 (seed counts calendar days)
    concept_within_hours: float = 24              # CL-6 (wall clock)
    first_post_within_working_days: int = 3      # CL-9 (CAL-2 working days)
    period_months: int = 1                        # CL-10
    renewal_task_days_before_end: int = 3         # CL-11
    loss_after_days: int = 7                      # CL-13
    money_back_days: int = 10                     # CL-15
    # CL-12 documents: the agency's own requisites. Empty until the lead enters them in Settings: a
    # document never prints placeholder zeros; it says which requisites are missing (`missing_requisites`).
    agency_name: str = ""
    agency_bin: str = ""
    agency_bank: str = ""
    agency_bik: str = ""
    agency_iban: str = ""
    agency_address: str = ""
    agency_signer: str = ""
    agency_email: str = ""
    # CAL-1, the business calendar the lead sets in Settings (empty: the process's AGENCY_* environment).
    # Applied from the moment it is saved; the clients service announces it with
    # `clients.agency.calendar_changed.v1` and every service computes new deadlines with it.
    calendar_timezone: str = ""
    calendar_hours: str = ""
    calendar_workdays: str = ""
    calendar_holidays: str = ""
    # The language new staff accounts and the public pages (questionnaire, approval) start in (gateway).
    default_language: str = ""

    @classmethod
    def names(cls) -> dict[str, type]:
        return {f.name: type(getattr(cls(), f.name)) for f in fields(cls)}

    @classmethod
    def coerce(cls, key: str, value: object) -> object:
        """Validate one setting's value; raises SettingError with a message code (shared.messages)."""
        kinds = cls.names()
        if key not in kinds:
            raise SettingError(M.UNKNOWN_SETTING)
        kind = kinds[key]
        if kind is bool:
            if not isinstance(value, bool):
                raise SettingError(M.BOOLEAN)
            return value
        if kind in (int, float):
            if isinstance(value, str):
                try:
                    value = float(value.strip().replace(",", ".")) if value.strip() else value
                except ValueError:
                    raise SettingError(M.NUMBER) from None
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SettingError(M.NUMBER)
            if value < 0:
                raise SettingError(M.NOT_NEGATIVE)
            if kind is int:
                if int(value) != value:
                    raise SettingError(M.WHOLE)
                value = int(value)
            elif float(value).is_integer():
                value = int(value)
            if key == "period_months" and value < 1:
                raise SettingError(M.AT_LEAST_ONE)
            return value
        if not isinstance(value, str):
            raise SettingError(M.REQUIRED)
        value = value.strip()
        if key == "default_language":
            if value not in LANGUAGES:
                raise SettingError(M.LANGUAGE)
            return value
        if key in REQUISITES or key.startswith("calendar_"):
            return check_agency_value(key, value)
        if not value:
            raise SettingError(M.REQUIRED)
        if key == "first_call_morning":
            try:
                time.fromisoformat(value)
            except ValueError:
                raise SettingError(M.TIME_FORMAT) from None
        return value

    def missing_requisites(self) -> list[str]:
        """CL-12: the requisites a document needs and the agency has not entered yet."""
        return [key for key in REQUIRED_REQUISITES if not getattr(self, key)]

    def calendar(self, base: BusinessCalendar) -> BusinessCalendar:
        """The calendar the lead set (CAL-1); each part left empty keeps the process's own."""
        if not any((self.calendar_timezone, self.calendar_hours, self.calendar_workdays, self.calendar_holidays)):
            return base
        return build_calendar(base, self.calendar_timezone, self.calendar_hours, self.calendar_workdays,
                              self.calendar_holidays)


class SettingError(ValueError):
    """A setting's value is refused: `code` is a shared.messages code."""

    def __init__(self, code: str) -> None:
        super().__init__(M.text(code))
        self.code = code


LANGUAGES = ("ru", "kk", "en", "zh")
REQUISITES = ("agency_name", "agency_bin", "agency_bank", "agency_bik", "agency_iban", "agency_address",
              "agency_signer", "agency_email")
REQUIRED_REQUISITES = ("agency_name", "agency_bin", "agency_bank", "agency_bik", "agency_iban", "agency_address",
                       "agency_signer")


def check_agency_value(key: str, value: str) -> str:
    """Requisites and calendar parts: empty is allowed (not entered yet / the environment's); otherwise the
    value must be well-formed (BIN checksum, KZ IBAN, BIK; calendar syntax of shared.calendar)."""
    if not value:
        return value
    code = None
    if key == "agency_bin":
        code = check_bin(value)
    elif key == "agency_iban":
        code = check_iban(value)
        value = normalize_iban(value)
    elif key == "agency_bik":
        code = check_bik(value)
        value = value.upper()
    elif key.startswith("calendar_"):
        parse, code_if_bad = {
            "calendar_timezone": (_parse_tz, M.CALENDAR_TZ), "calendar_hours": (_parse_hours, M.CALENDAR_HOURS),
            "calendar_workdays": (_parse_workdays, M.CALENDAR_WORKDAYS),
            "calendar_holidays": (_parse_holidays, M.CALENDAR_HOLIDAYS)}[key]
        try:
            parse(value)
        except ValueError:
            code = code_if_bad
    if code:
        raise SettingError(code)
    return value


# ----------------------------------------------------------------------------- CL-3

def first_call_due(cal: BusinessCalendar, paid_at: datetime, rv: RuleValues) -> datetime:
    """CL-3: first call due 1 h after payment; after 20:00 → 11:00 next morning; before 10:00 → 11:00."""
    return cal.first_call_due(
        paid_at,
        within=timedelta(hours=rv.first_call_within_hours),
        morning=time.fromisoformat(rv.first_call_morning),
        next_morning_is_working_day=rv.first_call_next_morning_working_day,
    )


def pick_least_loaded(candidates: list[tuple[str, str]], open_deals: dict[str, int]) -> str | None:
    """CL-3: of the (login, full name) candidates, the one with the fewest open deals wins; ties go by
    the staff member's full name, then login (issue 7 §6). An empty name sorts as the login would."""
    if not candidates:
        return None
    login, _name = min(candidates, key=lambda c: (open_deals.get(c[0], 0), (c[1] or c[0]).casefold(), c[0]))
    return login


# ----------------------------------------------------------------------------- CL-6, CL-9

def concept_due(cal: BusinessCalendar, received_at: datetime, rv: RuleValues) -> datetime:
    """CL-6: concept, 3 reference accounts, call and materials request within 24 h (wall clock)."""
    return cal.add_hours(received_at, rv.concept_within_hours)


def first_post_due(cal: BusinessCalendar, received_at: datetime, rv: RuleValues) -> datetime:
    """CL-9: questionnaire → first published post within 3 working days (CAL-2)."""
    return cal.add_working_days(received_at, rv.first_post_within_working_days)


# ----------------------------------------------------------------------------- CL-10, CL-11, CL-13, CL-14

def add_months(d: date, months: int) -> date:
    """Calendar months; the 31st of January + 1 month is the last day of February."""
    month0 = d.month - 1 + months
    year, month = d.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(d.day, _cal.monthrange(year, month)[1]))


def local_midnight(cal: BusinessCalendar, d: date) -> datetime:
    return datetime.combine(d, time(0, 0), tzinfo=cal.tz).astimezone(UTC)


def local_date(cal: BusinessCalendar, ts: datetime) -> date:
    return cal.local(ts).date()


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    renewal_task_at: datetime  # CL-11
    loss_at: datetime          # CL-13


def service_period(cal: BusinessCalendar, service_start: date, rv: RuleValues) -> Period:
    """CL-10: a period runs from local midnight of the service start date for `period_months` calendar
    months (the agency's time zone): started 2026-03-01 → ends 2026-04-01 00:00, i.e. covers March.
    CL-11: the renewal task appears `renewal_task_days_before_end` days before the end.
    CL-13: unpaid `loss_after_days` days after the end → lost."""
    start = local_midnight(cal, service_start)
    end = local_midnight(cal, add_months(service_start, rv.period_months))
    return Period(start=start, end=end,
                  renewal_task_at=cal.add_days(end, -rv.renewal_task_days_before_end),
                  loss_at=cal.add_days(end, rv.loss_after_days))


def after_full_month(period_no: int, period_end: datetime | None, at: datetime, renewal_lead_days: int,
                     cal: BusinessCalendar) -> bool:
    """PAY-2 / PAY-3 "after a month of service" = the client has completed at least one full service
    period (issue 7 §6). `period_no` is the deal's current period when the fact (renewal payment,
    loss) happens: from the second period on, the first one was completed — a second-month client
    who renews a week early counts. In the first period, the fact counts from the renewal window of
    its end (period end − `renewal_task_days_before_end`, CL-11) on: renewing on time, or lost after
    the period ran out. A client who prepays in the middle of the first period, or leaves before
    launch, is not "after a month"."""
    if period_end is None or period_no < 1:
        return False
    if period_no >= 2:
        return True
    return at >= cal.add_days(period_end, -renewal_lead_days)


# ----------------------------------------------------------------------------- CL-15

def money_back_window_end(first_payment_at: datetime, rv: RuleValues, cal: BusinessCalendar) -> datetime:
    """CL-15: the money-back window is the first 10 days (wall clock) after the first payment."""
    return cal.add_days(first_payment_at, rv.money_back_days)


def refund_within_window(refunded_at: datetime, first_payment_at: datetime, rv: RuleValues,
                         cal: BusinessCalendar) -> bool:
    """CL-15 / PAY-4: a refund counts as "within 10 days" when it happened before the window closed."""
    return refunded_at < money_back_window_end(first_payment_at, rv, cal)


# ----------------------------------------------------------------------------- CAL-3

def deadline_outcome(due_at: datetime, done_at: datetime) -> str:
    """CAL-3: done at or before the due instant → met; later → breached."""
    return "met" if done_at <= due_at else "breached"


# ----------------------------------------------------------------------------- stages (CL-4…CL-13)

_FORWARD = {
    "contacted": ("new",),                                                   # CL-4
    "questionnaire_received": ("new", "contacted"),                           # CL-5
    "project_launched": ("new", "contacted", "questionnaire_received"),      # CL-8
    "notification_sent": ("project_launched",),                              # CL-12
    "lost": ("new", "contacted", "questionnaire_received", "project_launched", "notification_sent"),
}


def can_move(from_stage: str, to_stage: str) -> bool:
    """Stages only move forward; `lost` can follow any live stage; nothing leaves `lost` except a
    payment (CL-13 undo, or a returning client's renewal)."""
    return from_stage in _FORWARD.get(to_stage, ())


# ----------------------------------------------------------------------------- CL-16

def funnel(counts: dict[str, int]) -> list[dict[str, object]]:
    """CL-16: dialogs → warm leads → applications → paid → launched → renewed / lost, with the
    conversion of each step from the step before (renewed and lost both from launched)."""
    order = [("dialogs", None), ("warm_leads", "dialogs"), ("applications", "warm_leads"),
             ("paid", "applications"), ("launched", "paid"), ("renewed", "launched"), ("lost", "launched")]
    steps = []
    for name, base in order:
        count = counts.get(name, 0)
        conversion = None
        if base is not None:
            denominator = counts.get(base, 0)
            conversion = round(count / denominator, 4) if denominator else None
        steps.append({"step": name, "count": count, "conversion_from_previous": conversion})
    return steps


# ----------------------------------------------------------------------------- list answers

def net_paid(payments: list[tuple[str, Decimal, datetime]], refunds: list[tuple[str, Decimal]]
             ) -> tuple[Decimal, str | None]:
    """What the client has paid for the deal: the payments minus the refunds, in the deal's currency.

    `payments` are (currency, amount, earliest paid_at) — one row per currency or per payment —
    and `refunds` (currency, amount). The deal's currency is that of its first payment; a payment
    in another currency (none are expected: an agency bills a client in one currency) is left out
    rather than added to a sum it does not belong to. No payment → ("0.00", None)."""
    if not payments:
        return Decimal("0.00"), None
    currency = min(payments, key=lambda p: p[2])[0]
    total = sum((Decimal(amount) for cur, amount, _at in payments if cur == currency), Decimal(0))
    total -= sum((Decimal(amount) for cur, amount in refunds if cur == currency), Decimal(0))
    return total.quantize(Decimal("0.01")), currency

