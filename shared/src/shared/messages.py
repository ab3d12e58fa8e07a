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
TELEGRAM_CHAT_ID = "telegram.chat_id"
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
# ---------------------------------------------------------------- facts reported late (every service)
DATE_FORMAT = "date.format"
FACT_IN_FUTURE = "fact.in_future"
FACT_BACKDATE = "fact.backdate_forbidden"
# ---------------------------------------------------------------- content (CO-1…CO-7)
CONTENT_DEAL_LOST = "content.deal_lost"
CONTENT_NO_LONGER_RUN = "content.no_longer_run"
CONTENT_PLAN_LOCKED = "content.plan.locked"
CONTENT_PLAN_IN_APPROVAL = "content.plan.in_approval"
CONTENT_PLAN_APPROVED = "content.plan.approved"
CONTENT_PLAN_NOT_WAITING = "content.plan.not_waiting"
CONTENT_PLAN_EMPTY = "content.plan.empty"
CONTENT_PLAN_OPEN_COMMENTS = "content.plan.open_comments"
CONTENT_PLAN_1_NOT_APPROVED = "content.plan.first_not_approved"
CONTENT_ITEM_OUTSIDE_PLAN = "content.item.outside_plan"
CONTENT_ITEM_KIND = "content.item.kind"
CONTENT_CAPTION_TOO_LONG = "content.item.caption_too_long"
CONTENT_MEDIA_LIST = "content.item.media_list"
CONTENT_ITEM_PUBLISHED = "content.item.published"
CONTENT_ALREADY_PUBLISHED = "content.item.already_published"
CONTENT_PERMALINK = "content.item.permalink"
CONTENT_NO_MEDIA = "content.item.no_media"
CONTENT_REEL_VIDEO = "content.item.reel_needs_video"
CONTENT_RETRY_FAILED_ONLY = "content.item.retry_failed_only"
CONTENT_EMPTY_REPLY = "content.comment.empty_reply"
CONTENT_NOT_AN_ITEM = "content.comment.not_an_item"
CONTENT_SAY_WHAT = "content.approval.say_what"
CONTENT_DECISION_APPROVAL = "content.approval.decision"
CONTENT_ROUND_ANSWERED = "content.approval.round_answered"
CONTENT_LINK_EXPIRED = "content.link_expired"
CONTENT_DECISION_REQUEST = "content.request.decision"
CONTENT_REQUEST_ANSWERED = "content.request.answered"
CONTENT_IG_USER_ID = "content.instagram.user_id"
CONTENT_IG_NOT_CONNECTED = "content.instagram.not_connected"
CONTENT_PLAN_DAYS_ORDER = "content.settings.plan_days_order"
STATS_WEEK_MONDAY = "stats.week_monday"
STATS_WEEK_NOT_STARTED = "stats.week_not_started"
STATS_UNKNOWN_FIGURE = "stats.unknown_figure"
STATS_WHOLE = "stats.whole"
STATS_AT_LEAST_ONE = "stats.at_least_one"
STATS_WEEKS_RANGE = "stats.weeks_range"
STATS_NO_DATE_COLUMN = "stats.no_date_column"
STATS_NO_FIGURE_COLUMN = "stats.no_figure_column"
STATS_NOT_WHOLE = "stats.not_whole"
STATS_NOT_A_DATE = "stats.not_a_date"

# ---------------------------------------------------------------- group SOP (EN-8…EN-13) and periods
SOP_TAG_LONG = "sop.tag_too_long"
SOP_TOO_LONG = "sop.too_long"
SOP_NO_CHANNEL = "sop.no_channel"
SOP_GROUP_EXISTS = "sop.group_exists"
SOP_BULK_COUNT = "sop.bulk_count"
SOP_GROUPS_MISSING = "sop.groups_missing"
SOP_STATUS = "sop.status"
SOP_CHOOSE_OWNER = "sop.choose_owner"
END_BEFORE_START = "period.end_before_start"
PERIOD_TOO_LONG = "period.too_long"
SOP_GROUP_BY = "sop.group_by"
SOP_TARGET = "sop.target"
SOP_TEXT_LONG = "sop.text_too_long"
SOP_LINK = "sop.link"
SOP_NO_FILE = "sop.no_file"
SOP_ATTACHMENT_KIND = "sop.attachment_kind"
SOP_EMPTY = "sop.empty"
SOP_WEEKDAYS = "sop.weekdays"
SOP_EVERY_N = "sop.every_n_days"
SOP_SCHEDULE = "sop.schedule"
SOP_NAME = "sop.name"
SOP_PREVIEW_DAYS = "sop.preview_days"
SOP_IN_FUTURE = "sop.in_future"
MONTH_FORMAT = "month.format"
SOP_ENTRY_DUE = "sop.entry_due"
SOP_FILE_KIND = "sop.file_kind"
SOP_QUOTA = "sop.quota"
SOP_EXPIRY = "sop.expiry"
SOP_REMINDER_CHANNEL = "sop.reminder_channel"
SOP_PUSH_FAILED = "sop.push_failed"
SOP_RETARGET_ONLY = "sop.retarget_only"
SOP_NO_OWNER = "sop.no_owner"

# ---------------------------------------------------------------- clients: deals, tasks, refunds, leads
PAYMENT_IN_FUTURE = "payment.in_future"
LEAD_ALREADY_CONVERTED = "lead.already_converted"
NOT_A_MANAGER_IN_ROSTER = "roster.not_a_manager"
DEAL_STAGE_MOVE = "deal.stage_move"
DEAL_LOST = "deal.lost"
QUESTIONNAIRE_BEFORE_PAYMENT = "deal.questionnaire_before_payment"
SERVICE_BEFORE_PAYMENT = "deal.service_before_payment"
TASK_STATE = "task.state"
TASK_BEFORE_CREATED = "task.before_created"
RENEWAL_CALL_RECORDING = "task.renewal_recording"
PHONE_TAKEN = "client.phone_taken"
NO_SUCH_TASK = "attachment.no_such_task"
REFUND_NO_PAYMENT = "refund.no_payment"
REFUND_CURRENCY = "refund.currency"
REFUND_TOO_MUCH = "refund.too_much"
RENEWAL_NOT_LAUNCHED = "renewal.not_launched"
RENEWAL_BEFORE_PAYMENT = "renewal.before_payment"
RENEWAL_ANSWER_STAGE = "renewal.answer_stage"
NOT_A_CONTENT_MANAGER = "roster.not_content_manager"
DEADLINE_STATE = "deadline.state"
CHECKLIST_ITEM = "checklist.unknown_item"
CHECKLIST_FIRST = "checklist.tick_first"
LEAD_OWN = "lead.own"
LEAD_PAID_BY_PAYMENT = "lead.paid_by_payment"
LEAD_AT_STAGE = "lead.at_stage"
LEAD_BEFORE_DIALOG = "lead.before_dialog"
LEAD_DISQUALIFIED = "lead.disqualified"
DEAL_ALREADY_LOST = "deal.already_lost"
STAGE_NOT_BY_HAND = "deal.stage_not_by_hand"
REFUND_IN_FUTURE = "refund.in_future"
LEAD_PAID_NOT_SPAM = "lead.paid_not_spam"

# ---------------------------------------------------------------- engagement: inbox, monitoring, care
QUESTION_ANSWERED = "ask.answered"
CAP_NOT_NEGATIVE = "agent.cap"
TEAM_TOO_LONG = "agent.team_too_long"
URL_FORMAT = "url.format"
FEED_INTERVAL = "monitoring.interval"
FEED_EXISTS = "monitoring.feed_exists"
KEYWORDS_REQUIRED = "monitoring.keywords"
MENTION_STATE = "monitoring.mention_state"
MENTION_CONVERTED = "monitoring.mention_converted"
DISMISS_REASON = "monitoring.dismiss_reason"
DISMISS_NOTE = "monitoring.dismiss_note"
NOTE_TOO_LONG = "inbox.note_too_long"
CATEGORY_TOO_LONG = "inbox.category_too_long"
PRIORITY_UNKNOWN = "inbox.priority"
QUALITY_SCORE = "quality.score"
QUALITY_NO_ANSWER = "quality.no_answer"
CARE_TARGET = "care.target"
CARE_MODE = "care.mode"
PORT = "config.port"
MAIL_SECURITY = "config.mail_security"
SLUG = "config.slug"
EMAIL_CHANNEL_ID = "channel.email_channel"
WEBHOOK_TELEGRAM_ONLY = "channel.webhook_telegram_only"
REPLY_TOO_LONG = "inbox.reply_too_long"
CUSTOMER_UNREACHABLE = "inbox.unreachable"
INSTAGRAM_WINDOW = "inbox.instagram_window"
REPLY_FILES_CHANNEL = "inbox.reply_files_channel"
REPLY_FILES_TOO_MANY = "inbox.reply_files_too_many"
REPLY_FILES_TOO_LARGE = "inbox.reply_files_too_large"
REPLY_FILE_EMPTY = "inbox.reply_file_empty"
TAG_RULE_KIND = "inbox.tag_rule_kind"
TOO_LONG_200 = "text.too_long_200"
TEMPLATE_KIND = "template.kind"
NO_SUCH_TEMPLATE = "template.missing"

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
    TELEGRAM_CHAT_ID: "a Telegram chat id is a number",
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
    DATE_FORMAT: "must be YYYY-MM-DD",
    FACT_IN_FUTURE: "a fact cannot be dated in the future",
    FACT_BACKDATE: "only the project lead or an integration may backdate a fact",
    CONTENT_DEAL_LOST: "the deal is lost: its content work has stopped",
    CONTENT_NO_LONGER_RUN: "the agency no longer runs this account",
    CONTENT_PLAN_LOCKED: "the plan is %(state)s: items change only while it is a draft or after the client asked "
                         "for changes (CO-4)",
    CONTENT_PLAN_IN_APPROVAL: "the plan is already waiting for the client's answer",
    CONTENT_PLAN_APPROVED: "the plan is already approved",
    CONTENT_PLAN_NOT_WAITING: "the plan is not waiting for the client's answer",
    CONTENT_PLAN_EMPTY: "a plan needs at least one item before it is sent",
    CONTENT_PLAN_OPEN_COMMENTS: "%(count)s comment(s) not addressed: answer them or mark them done (CO-4)",
    CONTENT_PLAN_1_NOT_APPROVED: "plan 1 of the period is not approved (CO-2)",
    CONTENT_ITEM_OUTSIDE_PLAN: "outside the plan's days %(first)s…%(last)s",
    CONTENT_ITEM_KIND: "must be one of %(kinds)s",
    CONTENT_CAPTION_TOO_LONG: "at most 2,200 characters (Instagram's limit)",
    CONTENT_MEDIA_LIST: "a list of media URLs",
    CONTENT_ITEM_PUBLISHED: "a published item does not change",
    CONTENT_ALREADY_PUBLISHED: "already published at %(at)s",
    CONTENT_PERMALINK: "must be the post's URL",
    CONTENT_NO_MEDIA: "the item has no media to publish",
    CONTENT_REEL_VIDEO: "a reel needs a video",
    CONTENT_RETRY_FAILED_ONLY: "only a failed item is retried (this one is %(status)s)",
    CONTENT_EMPTY_REPLY: "an empty reply: leave it out to mark the comment done",
    CONTENT_NOT_AN_ITEM: "not an item of this plan",
    CONTENT_SAY_WHAT: "say what to change: at least one comment",
    CONTENT_DECISION_APPROVAL: "must be approve or changes",
    CONTENT_ROUND_ANSWERED: "this round was already answered; the newest link shows the plan as it is now",
    CONTENT_LINK_EXPIRED: "this link has expired; ask your manager for a new one",
    CONTENT_DECISION_REQUEST: "must be approve or decline",
    CONTENT_REQUEST_ANSWERED: "already %(status)s",
    CONTENT_IG_USER_ID: "the Instagram professional account's numeric id",
    CONTENT_IG_NOT_CONNECTED: "no Instagram account connected",
    CONTENT_PLAN_DAYS_ORDER: "plan_1_last_day must be before plan_2_last_day",
    STATS_WEEK_MONDAY: "a week starts on a Monday",
    STATS_WEEK_NOT_STARTED: "the week has not started",
    STATS_UNKNOWN_FIGURE: "unknown figure",
    STATS_WHOLE: "a whole number, 0 or more",
    STATS_AT_LEAST_ONE: "give at least one figure",
    STATS_WEEKS_RANGE: "between 1 and %(max)s",
    STATS_NO_DATE_COLUMN: "no date column (Date, Дата, Күні, 日期)",
    STATS_NO_FIGURE_COLUMN: "no known figure column (likes, reach, …)",
    STATS_NOT_WHOLE: "not a whole number: %(value)r",
    STATS_NOT_A_DATE: "not a date: %(value)r (YYYY-MM-DD or DD.MM.YYYY)",
    SOP_TAG_LONG: "a tag is at most 50 characters",
    SOP_TOO_LONG: "at most %(limit)s characters",
    SOP_NO_CHANNEL: "no Telegram or VK channel account with this id",
    SOP_GROUP_EXISTS: "this group is already registered",
    SOP_BULK_COUNT: "choose between 1 and 5000 groups",
    SOP_GROUPS_MISSING: "some groups do not exist",
    SOP_STATUS: "status is pending, sent or failed",
    SOP_CHOOSE_OWNER: "choose an owner",
    END_BEFORE_START: "the end is before the start",
    PERIOD_TOO_LONG: "at most %(days)s days",
    SOP_GROUP_BY: "group_by is day, week or month",
    SOP_TARGET: "choose a category, tags or groups",
    SOP_TEXT_LONG: "at most 4096 characters (a Telegram message)",
    SOP_LINK: "a link is an http(s) address",
    SOP_NO_FILE: "no such file: upload it first",
    SOP_ATTACHMENT_KIND: "kind is image, video, file or link",
    SOP_EMPTY: "a push needs a text or an attachment",
    SOP_WEEKDAYS: "weekdays are 1 (Monday) to 7 (Sunday)",
    SOP_EVERY_N: "between 1 and 366 days",
    SOP_SCHEDULE: "choose at least one weekday or every N days",
    SOP_NAME: "required, at most 200 characters",
    SOP_PREVIEW_DAYS: "between 1 and 62 days",
    SOP_IN_FUTURE: "must be in the future",
    MONTH_FORMAT: "month is YYYY-MM",
    SOP_ENTRY_DUE: "the entry is due already: its pushes are made",
    SOP_FILE_KIND: "images, videos, PDF and office documents only",
    SOP_QUOTA: "between 0 and 1000",
    SOP_EXPIRY: "between 1 hour and 31 days",
    SOP_REMINDER_CHANNEL: "no Telegram channel account with this id",
    SOP_PUSH_FAILED: "the push failed (%(reason)s): re-target it first",
    SOP_RETARGET_ONLY: "only a push failed as transferred or owner_left is re-targeted",
    SOP_NO_OWNER: "the group has no owner: set one first",
    PAYMENT_IN_FUTURE: "a payment cannot be dated in the future",
    LEAD_ALREADY_CONVERTED: "lead already converted",
    NOT_A_MANAGER_IN_ROSTER: "not an active content manager in the roster",
    DEAL_STAGE_MOVE: "cannot move from %(from_stage)s to %(to_stage)s",
    DEAL_LOST: "the deal is lost",
    QUESTIONNAIRE_BEFORE_PAYMENT: "the questionnaire cannot precede the payment",
    SERVICE_BEFORE_PAYMENT: "the service cannot start before the first payment",
    TASK_STATE: "task is %(status)s",
    TASK_BEFORE_CREATED: "a task cannot be done before it existed",
    RENEWAL_CALL_RECORDING: "attach the call recording to the deal before completing the renewal call (CL-11)",
    PHONE_TAKEN: "another client card has this phone number; a returning client keeps one card",
    NO_SUCH_TASK: "no such task on this deal",
    REFUND_NO_PAYMENT: "no payment on this deal before the refund date",
    REFUND_CURRENCY: "the payment was in %(currency)s",
    REFUND_TOO_MUCH: "more than the payment's %(amount)s %(currency)s",
    RENEWAL_NOT_LAUNCHED: "the deal has not been launched yet: a renewal needs a service period",
    RENEWAL_BEFORE_PAYMENT: "a renewal cannot be dated before the deal's first payment",
    RENEWAL_ANSWER_STAGE: "a renewal answer needs a launched deal, not %(stage)s",
    NOT_A_CONTENT_MANAGER: "not a content manager in the roster",
    DEADLINE_STATE: "deadline is already %(state)s",
    CHECKLIST_ITEM: "not an item of this checklist: %(items)s",
    CHECKLIST_FIRST: "tick every checklist item first (CL-7); missing: %(missing)s",
    LEAD_OWN: "a manager registers leads for themselves",
    LEAD_PAID_BY_PAYMENT: "a lead becomes paid when a payment with its lead_id arrives",
    LEAD_AT_STAGE: "the lead is already at %(stage)s",
    LEAD_BEFORE_DIALOG: "cannot precede the dialog",
    LEAD_DISQUALIFIED: "the lead is marked %(reason)s",
    DEAL_ALREADY_LOST: "the deal is already lost",
    STAGE_NOT_BY_HAND: "%(stage)s is not set by hand",
    REFUND_IN_FUTURE: "a refund cannot be dated in the future",
    LEAD_PAID_NOT_SPAM: "a lead that paid is a client, not spam",
    QUESTION_ANSWERED: "this question has been answered",
    CAP_NOT_NEGATIVE: "cap must be 0 or more",
    TEAM_TOO_LONG: "a team name has at most 100 characters",
    URL_FORMAT: "must be an http(s) URL",
    FEED_INTERVAL: "must be between 1 and 1440",
    FEED_EXISTS: "this client account already watches this feed",
    KEYWORDS_REQUIRED: "at least one keyword is required",
    MENTION_STATE: "the mention is already %(status)s",
    MENTION_CONVERTED: "the mention is already a conversation",
    DISMISS_REASON: "reason is required: one of %(reasons)s",
    DISMISS_NOTE: "say why when the reason is other",
    NOTE_TOO_LONG: "a note is at most %(limit)s characters",
    CATEGORY_TOO_LONG: "category is at most 50 characters",
    PRIORITY_UNKNOWN: "priority must be one of %(choices)s",
    QUALITY_SCORE: "score must be 1 to 5",
    QUALITY_NO_ANSWER: "the conversation has no answer to mark yet",
    CARE_TARGET: "the target must be between 30 seconds and 7 days",
    CARE_MODE: "mode must be brand or rounds",
    PORT: "must be a port number (1-65535)",
    MAIL_SECURITY: "must be one of %(choices)s",
    SLUG: "lowercase letters, digits and dashes (2-63)",
    EMAIL_CHANNEL_ID: "must be the id of an e-mail channel",
    WEBHOOK_TELEGRAM_ONLY: "webhook registration by API is for Telegram; %(kind)s is set up in its console",
    REPLY_TOO_LONG: "text is longer than %(kind)s allows (%(limit)s characters)",
    CUSTOMER_UNREACHABLE: "the customer cannot be reached on this channel: %(reason)s",
    INSTAGRAM_WINDOW: "outside Instagram's 24-hour messaging window: the customer must write first",
    REPLY_FILES_CHANNEL: "files cannot be sent in this conversation (%(where)s): text only",
    REPLY_FILES_TOO_MANY: "at most %(limit)s files in one reply",
    REPLY_FILES_TOO_LARGE: "the files of one reply may be %(limit)s MB together",
    REPLY_FILE_EMPTY: "%(name)s is empty",
    TAG_RULE_KIND: "kind must be one of %(choices)s",
    TOO_LONG_200: "at most 200 characters",
    TEMPLATE_KIND: "one of %(choices)s",
    NO_SUCH_TEMPLATE: "no such template",
}

# Refusals of every service (not found, not allowed, payroll rule sets…) live in their own module: its names
# are this module's names, its codes are in CODES.
from shared.message_refusals import *  # noqa: E402,F403
from shared.message_refusals import REFUSALS  # noqa: E402

if set(REFUSALS) & set(CODES):   # a code means one thing: never defined in both places
    raise RuntimeError(f"codes defined twice: {sorted(set(REFUSALS) & set(CODES))}")
CODES.update(REFUSALS)

# Older English messages the services still write in a few places, and the codes they mean.
_BY_TEXT = {**{english: code for code, english in CODES.items() if "%(" not in english},
            "missing": REQUIRED, "BIN/IIN is 12 digits": BIN_LENGTH}


def message_code(message: str) -> str | None:
    """The code of a fixed English message (None for free text)."""
    return _BY_TEXT.get(message.strip())


def text(code: str, /, **params: Any) -> str:
    """The English text of a code (logs, API clients)."""
    return CODES[code] % params if params else CODES[code]


def error(field: str | None, code: str, /, **params: Any) -> Any:
    """A DomainError (422) carrying one coded item."""
    from shared.errors import DomainError

    return refusal(DomainError, field, code, **params)


def refusal(kind: type, field: str | None, code: str, /, **params: Any) -> Any:
    # Positional-only: a message may have a parameter named `kind` or `field` ("longer than %(kind)s allows").
    """An error of `kind` (DomainError or one of its 4xx subclasses: Conflict, Gone…) carrying one coded item."""
    return kind(text(code, **params), errors=[item(field, code, **params)])


def item(field: str | None, code: str, /, **params: Any) -> dict[str, Any]:
    """One error item of a 4xx body: the English message, its code and parameters."""
    return {"field": field, "message": text(code, **params), "code": code, "params": params}
