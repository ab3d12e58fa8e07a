"""Stable codes of the messages services send to people (issue 9: "services answer with codes + parameters;
the gateway translates").

A service puts `code` (one of `CODES`) and `params` next to its English `message` — in a 4xx error item
(`{"field", "message", "code", "params"}`), a statement line (`note_code`, `note_params`), an import row
error. The English text here is for logs and API clients; the gateway shows its own translation of the code
(gateway/messages.py) and a test fails when a code has no translation in one of the four catalogues.
Codes are never renamed; a new wording keeps the code.
"""

from __future__ import annotations

from typing import Any

# ---------------------------------------------------------------- form fields
REQUIRED = "required"
BIN_LENGTH = "bin.length"
BIN_CHECKSUM = "bin.checksum"
IBAN_FORMAT = "iban.format"
IBAN_CHECKSUM = "iban.checksum"
BIK_FORMAT = "bik.format"
TIME_FORMAT = "time.format"
NUMBER = "number"
NOT_NEGATIVE = "number.not_negative"
WHOLE = "number.whole"
AT_LEAST_ONE = "number.at_least_one"
BOOLEAN = "boolean"
CALENDAR_TZ = "calendar.timezone"
CALENDAR_HOURS = "calendar.hours"
CALENDAR_WORKDAYS = "calendar.workdays"
CALENDAR_HOLIDAYS = "calendar.holidays"
UNKNOWN_SETTING = "settings.unknown"
LANGUAGE = "language.unknown"
PHONE = "phone.format"
EMAIL = "email.format"
DATETIME = "datetime.format"
# ---------------------------------------------------------------- payroll
MONTH_NOT_ENDED = "payroll.month_not_ended"
MONTH_CLOSED = "payroll.month_closed"
LINE_BASE_SALARY = "payroll.line.base_salary"
LINE_RENEWAL = "payroll.line.renewal"
LINE_LOST = "payroll.line.lost"
LINE_REFUND = "payroll.line.refund"
LINE_NO_REFUND = "payroll.line.no_refund"
LINE_DEADLINE = "payroll.line.deadline_breached"
LINE_BEST_MANAGER = "payroll.line.best_manager"
LINE_REVERSAL = "payroll.line.reversal"
LINE_ADJUSTMENT = "payroll.line.adjustment"
LINE_REVERSAL_WAIVED = "payroll.line.reversal_waived"
LINE_REVERSAL_MET = "payroll.line.reversal_met"
# ---------------------------------------------------------------- uploads
UPLOAD_REQUIRED = "upload.required"
UPLOAD_AUDIO_ONLY = "upload.audio_only"
UPLOAD_TOO_LARGE = "upload.too_large"
UPLOAD_EMPTY = "upload.empty"
UPLOAD_AT_MOST = "upload.at_most"
UPLOAD_MEDIA_KIND = "upload.media_kind"
UPLOAD_CSV_REQUIRED = "upload.csv_required"
UPLOAD_ENCODING = "upload.encoding"
UPLOAD_NOT_AMOCRM = "upload.not_amocrm"
# ---------------------------------------------------------------- imports (CL-16 amoCRM)
IMPORT_UNKNOWN_STAGE = "import.unknown_stage"
IMPORT_UNKNOWN_SERVICE = "import.unknown_service"
IMPORT_UNKNOWN_PAYER = "import.unknown_payer"
IMPORT_NOT_A_DATE = "import.not_a_date"
IMPORT_REQUIRED_LAUNCHED = "import.required_for_launched"

CODES: dict[str, str] = {
    REQUIRED: "required",
    BIN_LENGTH: "a BIN/IIN is 12 digits",
    BIN_CHECKSUM: "the BIN/IIN's control digit does not match",
    IBAN_FORMAT: "a Kazakh IBAN is KZ, 2 check digits and 16 characters",
    IBAN_CHECKSUM: "the IBAN's check digits do not match",
    BIK_FORMAT: "a BIK is 8 characters like CASPKZKA",
    TIME_FORMAT: "must be HH:MM",
    NUMBER: "must be a number",
    NOT_NEGATIVE: "must not be negative",
    WHOLE: "must be a whole number",
    AT_LEAST_ONE: "must be at least 1",
    BOOLEAN: "must be true or false",
    CALENDAR_TZ: "unknown time zone (an IANA name like Asia/Almaty)",
    CALENDAR_HOURS: "working hours are HH:MM-HH:MM with the start before the end",
    CALENDAR_WORKDAYS: "choose at least one working weekday",
    CALENDAR_HOLIDAYS: "holidays are dates YYYY-MM-DD, one per line",
    UNKNOWN_SETTING: "unknown setting",
    LANGUAGE: "unknown language",
    PHONE: "not a phone number",
    EMAIL: "not an e-mail address",
    DATETIME: "must be ISO-8601 with a UTC offset",
    MONTH_NOT_ENDED: "%(month)s has not ended yet (agency time)",
    MONTH_CLOSED: "%(month)s is already closed",
    LINE_BASE_SALARY: "base salary %(month)s",
    LINE_RENEWAL: "renewal after a month of service",
    LINE_LOST: "client lost after a month of service",
    LINE_REFUND: "refund within 10 days of the first payment",
    LINE_NO_REFUND: "not refunded within 10 days of the first payment",
    LINE_DEADLINE: "deadline %(rule)s breached",
    LINE_BEST_MANAGER: "best manager of %(month)s",
    LINE_REVERSAL: "reverses line %(line)s",
    LINE_ADJUSTMENT: "adjustment for %(month)s (closed)",
    LINE_REVERSAL_WAIVED: "reverses line %(line)s: deadline %(rule)s waived by %(by)s: %(reason)s",
    LINE_REVERSAL_MET: "reverses line %(line)s: deadline %(rule)s was met in time",
    UPLOAD_REQUIRED: "a file is required",
    UPLOAD_AUDIO_ONLY: "only audio recordings (audio/*) are accepted",
    UPLOAD_TOO_LARGE: "the file is larger than %(limit_mb)s MB",
    UPLOAD_EMPTY: "the file is empty",
    UPLOAD_AT_MOST: "at most %(limit_mb)s MB",
    UPLOAD_MEDIA_KIND: "Instagram publishes JPEG images and MP4 or MOV videos only",
    UPLOAD_CSV_REQUIRED: "a CSV file is required",
    UPLOAD_ENCODING: "the file is neither UTF-8 nor Windows-1251",
    UPLOAD_NOT_AMOCRM: "not an amoCRM deals export: no ID column",
    IMPORT_UNKNOWN_STAGE: "unknown stage %(value)s",
    IMPORT_UNKNOWN_SERVICE: "unknown service %(value)s",
    IMPORT_UNKNOWN_PAYER: "unknown payer type %(value)s",
    IMPORT_NOT_A_DATE: "not a date: %(value)s (%(format)s)",
    IMPORT_REQUIRED_LAUNCHED: "required for a launched deal (CL-8)",
}


# Older English messages the services still write in a few places, and the codes they mean.
_BY_TEXT = {"missing": REQUIRED, "BIN/IIN is 12 digits": BIN_LENGTH,
            **{english: code for code, english in CODES.items() if "%(" not in english}}


def message_code(message: str) -> str | None:
    """The code of a fixed English message (None for free text)."""
    return _BY_TEXT.get(message.strip())


def text(code: str, **params: Any) -> str:
    """The English text of a code (logs, API clients)."""
    return CODES[code] % params if params else CODES[code]


def error(field: str | None, code: str, **params: Any) -> Any:
    """A DomainError (422) carrying one coded item."""
    from shared.errors import DomainError

    return DomainError(text(code, **params), errors=[item(field, code, **params)])


def item(field: str | None, code: str, **params: Any) -> dict[str, Any]:
    """One error item of a 4xx body: the English message, its code and parameters."""
    return {"field": field, "message": text(code, **params), "code": code, "params": params}
