"""The services' message codes (shared.messages) in the reader's language (issue 9).

Every code a service may send has a msgid here; test_messages.py fails when one is missing or is not
translated in all four catalogues. A message without a code (free text a person wrote, or an older
service) is shown as sent.
"""

from __future__ import annotations

from typing import Any

from gateway.i18n import N_, gettext
from gateway.messages_refusals import REFUSAL_MESSAGES
from shared import messages as M

MESSAGES: dict[str, str] = {
    M.REQUIRED: N_("Required."),
    M.BIN_LENGTH: N_("A BIN/IIN is 12 digits."),
    M.BIN_CHECKSUM: N_("This BIN/IIN's control digit does not match: check the number."),
    M.IBAN_FORMAT: N_("A Kazakh IBAN is KZ, 2 check digits and 16 characters (20 in all)."),
    M.IBAN_CHECKSUM: N_("This IBAN's check digits do not match: check the number."),
    M.BIK_FORMAT: N_("A BIK is 8 characters like CASPKZKA."),
    M.TIME_FORMAT: N_("Enter a time like 11:00."),
    M.NUMBER: N_("Enter a number."),
    M.NOT_NEGATIVE: N_("Must not be negative."),
    M.WHOLE: N_("Enter a whole number."),
    M.AT_LEAST_ONE: N_("Must be at least 1."),
    M.BOOLEAN: N_("Choose yes or no."),
    M.CALENDAR_TZ: N_("Unknown time zone: use a name like Asia/Almaty."),
    M.CALENDAR_HOURS: N_("Working hours start before they end, like 10:00–20:00."),
    M.CALENDAR_WORKDAYS: N_("Choose at least one working day."),
    M.CALENDAR_HOLIDAYS: N_("Holidays are dates like 2026-03-08, one per line."),
    M.UNKNOWN_SETTING: N_("Unknown setting."),
    M.LANGUAGE: N_("Choose one of the four languages."),
    M.PHONE: N_("Enter a phone number like +7 701 123 45 67."),
    M.EMAIL: N_("Enter an e-mail address like name@example.kz."),
    M.DATETIME: N_("Enter a valid date and time."),
    M.TELEGRAM_CHAT_ID: N_("A Telegram chat id is a number, like 123456789."),
    M.MONTH_NOT_ENDED: N_("%(month)s has not ended yet: a month is closed after its last day."),
    M.MONTH_CLOSED: N_("%(month)s is already closed."),
    M.LINE_BASE_SALARY: N_("Base salary for %(month)s"),
    M.LINE_RENEWAL: N_("Renewal after a month of service"),
    M.LINE_LOST: N_("Client lost after a month of service"),
    M.LINE_REFUND: N_("Refund within 10 days of the first payment"),
    M.LINE_NO_REFUND: N_("No refund within 10 days of the first payment"),
    M.LINE_DEADLINE: N_("Deadline %(rule)s breached"),
    M.LINE_BEST_MANAGER: N_("Best manager of %(month)s"),
    M.LINE_REVERSAL: N_("Reverses line %(line)s"),
    M.LINE_ADJUSTMENT: N_("Correction of %(month)s (closed)"),
    M.LINE_REVERSAL_WAIVED: N_("Reverses line %(line)s: deadline %(rule)s waived by %(by)s: %(reason)s"),
    M.LINE_REVERSAL_MET: N_("Reverses line %(line)s: deadline %(rule)s was met in time"),
    M.UPLOAD_REQUIRED: N_("Choose a file."),
    M.UPLOAD_AUDIO_ONLY: N_("Only audio recordings are accepted."),
    M.UPLOAD_TOO_LARGE: N_("The file is larger than %(limit_mb)s MB."),
    M.UPLOAD_EMPTY: N_("The file is empty."),
    M.UPLOAD_AT_MOST: N_("The file may be at most %(limit_mb)s MB."),
    M.UPLOAD_MEDIA_KIND: N_("Instagram publishes JPEG images and MP4 or MOV videos only."),
    M.UPLOAD_CSV_REQUIRED: N_("Choose a CSV file."),
    M.UPLOAD_ENCODING: N_("The file is neither UTF-8 nor Windows-1251."),
    M.UPLOAD_NOT_AMOCRM: N_("This is not an amoCRM deals export: there is no ID column."),
    M.IMPORT_UNKNOWN_STAGE: N_("Unknown stage “%(value)s”."),
    M.IMPORT_UNKNOWN_SERVICE: N_("Unknown service “%(value)s”."),
    M.IMPORT_UNKNOWN_PAYER: N_("Unknown payer type “%(value)s”."),
    M.IMPORT_NOT_A_DATE: N_("“%(value)s” is not a date (%(format)s)."),
    M.IMPORT_REQUIRED_LAUNCHED: N_("Required for a launched deal (CL-8)."),
    M.DATE_FORMAT: N_("Enter a date like 2026-03-02."),
    M.FACT_IN_FUTURE: N_("A fact cannot be dated in the future."),
    M.FACT_BACKDATE: N_("Only the project lead may date a fact in the past."),
    M.CONTENT_DEAL_LOST: N_("The deal is lost: its content work has stopped."),
    M.CONTENT_NO_LONGER_RUN: N_("The agency no longer runs this account."),
    M.CONTENT_PLAN_LOCKED: N_("The plan's items change only while it is a draft or after the client asked for "
                              "changes (CO-4)."),
    M.CONTENT_PLAN_IN_APPROVAL: N_("The plan is already waiting for the client's answer."),
    M.CONTENT_PLAN_APPROVED: N_("The plan is already approved."),
    M.CONTENT_PLAN_NOT_WAITING: N_("The plan is not waiting for the client's answer."),
    M.CONTENT_PLAN_EMPTY: N_("Add at least one post before sending the plan."),
    M.CONTENT_PLAN_OPEN_COMMENTS: N_("Comments not addressed: %(count)s. Answer them or mark them done (CO-4)."),
    M.CONTENT_PLAN_1_NOT_APPROVED: N_("Plan 1 of the period is not approved by the client yet (CO-2)."),
    M.CONTENT_ITEM_OUTSIDE_PLAN: N_("Choose a day within the plan: %(first)s…%(last)s."),
    M.CONTENT_ITEM_KIND: N_("Choose a post, a reel or a story."),
    M.CONTENT_CAPTION_TOO_LONG: N_("At most 2,200 characters (Instagram's limit)."),
    M.CONTENT_MEDIA_LIST: N_("Give the media as a list of links."),
    M.CONTENT_ITEM_PUBLISHED: N_("A published post does not change."),
    M.CONTENT_ALREADY_PUBLISHED: N_("Already published."),
    M.CONTENT_PERMALINK: N_("Enter the post's link (https://…)."),
    M.CONTENT_NO_MEDIA: N_("The post has no media to publish."),
    M.CONTENT_REEL_VIDEO: N_("A reel needs a video."),
    M.CONTENT_RETRY_FAILED_ONLY: N_("Only a post whose publishing failed is tried again."),
    M.CONTENT_EMPTY_REPLY: N_("The reply is empty: leave it out to mark the comment done."),
    M.CONTENT_NOT_AN_ITEM: N_("Not a post of this plan."),
    M.CONTENT_SAY_WHAT: N_("Say what to change: write at least one comment."),
    M.CONTENT_DECISION_APPROVAL: N_("Approve the plan or ask for changes."),
    M.CONTENT_ROUND_ANSWERED: N_("This version was already answered; the newest link shows the plan as it is now."),
    M.CONTENT_LINK_EXPIRED: N_("This link has expired: ask your manager for a new one."),
    M.CONTENT_DECISION_REQUEST: N_("Approve or decline the request."),
    M.CONTENT_REQUEST_ANSWERED: N_("This request was already answered."),
    M.CONTENT_IG_USER_ID: N_("Enter the Instagram professional account's numeric id."),
    M.CONTENT_IG_NOT_CONNECTED: N_("No Instagram account is connected for this client."),
    M.CONTENT_PLAN_DAYS_ORDER: N_("Plan 1 must end before plan 2."),
    M.STATS_WEEK_MONDAY: N_("A week starts on a Monday."),
    M.STATS_WEEK_NOT_STARTED: N_("This week has not started yet."),
    M.STATS_UNKNOWN_FIGURE: N_("Unknown figure."),
    M.STATS_WHOLE: N_("Enter a whole number, 0 or more."),
    M.STATS_AT_LEAST_ONE: N_("Enter at least one figure."),
    M.STATS_WEEKS_RANGE: N_("Choose between 1 and %(max)s weeks."),
    M.STATS_NO_DATE_COLUMN: N_("The file has no date column (Date, Дата, Күні, 日期)."),
    M.STATS_NO_FIGURE_COLUMN: N_("The file has no known figure column (likes, reach, …)."),
    M.STATS_NOT_WHOLE: N_("“%(value)s” is not a whole number."),
    M.STATS_NOT_A_DATE: N_("“%(value)s” is not a date (YYYY-MM-DD or DD.MM.YYYY)."),
    M.SOP_TAG_LONG: N_("A tag has at most 50 characters."),
    M.SOP_TOO_LONG: N_("At most %(limit)s characters."),
    M.SOP_NO_CHANNEL: N_("Choose a Telegram or VK channel account."),
    M.SOP_GROUP_EXISTS: N_("This group is already registered."),
    M.SOP_BULK_COUNT: N_("Choose between 1 and 5,000 groups."),
    M.SOP_GROUPS_MISSING: N_("Some of the chosen groups no longer exist."),
    M.SOP_STATUS: N_("Choose pending, sent or failed."),
    M.SOP_CHOOSE_OWNER: N_("Choose an owner."),
    M.END_BEFORE_START: N_("The end is before the start."),
    M.PERIOD_TOO_LONG: N_("A period covers at most %(days)s days."),
    M.SOP_GROUP_BY: N_("Group by day, week or month."),
    M.SOP_TARGET: N_("Choose a category, tags or groups."),
    M.SOP_TEXT_LONG: N_("At most 4,096 characters (one Telegram message)."),
    M.SOP_LINK: N_("A link is an address starting with http:// or https://."),
    M.SOP_NO_FILE: N_("This file is not uploaded: upload it again."),
    M.SOP_ATTACHMENT_KIND: N_("An attachment is an image, a video, a file or a link."),
    M.SOP_EMPTY: N_("Write the text or attach something."),
    M.SOP_WEEKDAYS: N_("Choose weekdays from Monday to Sunday."),
    M.SOP_EVERY_N: N_("Every 1 to 366 days."),
    M.SOP_SCHEDULE: N_("Choose at least one weekday, or every N days."),
    M.SOP_NAME: N_("Required, at most 200 characters."),
    M.SOP_PREVIEW_DAYS: N_("Between 1 and 62 days."),
    M.SOP_IN_FUTURE: N_("Choose a moment in the future."),
    M.MONTH_FORMAT: N_("Choose a month like 2026-12."),
    M.SOP_ENTRY_DUE: N_("This push is due already: its pushes are made."),
    M.SOP_FILE_KIND: N_("Images, videos, PDF and office documents only."),
    M.SOP_QUOTA: N_("Enter a number from 0 to 1,000."),
    M.SOP_EXPIRY: N_("Between 1 hour and 31 days."),
    M.SOP_REMINDER_CHANNEL: N_("Choose a Telegram channel account."),
    M.SOP_PUSH_FAILED: N_("This push failed: re-target it first."),
    M.SOP_RETARGET_ONLY: N_("Only a push that failed because the group was transferred or its owner left is re-targeted."),
    M.SOP_NO_OWNER: N_("The group has no owner: choose one first."),
    M.PAYMENT_IN_FUTURE: N_("A payment cannot be dated in the future."),
    M.LEAD_ALREADY_CONVERTED: N_("This lead has already become a client."),
    M.NOT_A_MANAGER_IN_ROSTER: N_("Choose an active content manager."),
    M.DEAL_STAGE_MOVE: N_("The deal cannot move to this stage from where it is now."),
    M.DEAL_LOST: N_("The deal is lost."),
    M.QUESTIONNAIRE_BEFORE_PAYMENT: N_("The questionnaire cannot come before the payment."),
    M.SERVICE_BEFORE_PAYMENT: N_("The service cannot start before the first payment."),
    M.TASK_STATE: N_("This task is already closed."),
    M.TASK_BEFORE_CREATED: N_("A task cannot be done before it was created."),
    M.RENEWAL_CALL_RECORDING: N_("Attach the call recording before completing the renewal call (CL-11)."),
    M.PHONE_TAKEN: N_("Another client card has this phone number: a returning client keeps one card."),
    M.NO_SUCH_TASK: N_("This deal has no such task."),
    M.REFUND_NO_PAYMENT: N_("This deal has no payment before the refund date."),
    M.REFUND_CURRENCY: N_("The payment was in %(currency)s."),
    M.REFUND_TOO_MUCH: N_("More than the payment (%(amount)s %(currency)s)."),
    M.RENEWAL_NOT_LAUNCHED: N_("The deal has not been launched yet: a renewal needs a service period."),
    M.RENEWAL_BEFORE_PAYMENT: N_("A renewal cannot be dated before the deal's first payment."),
    M.RENEWAL_ANSWER_STAGE: N_("A renewal answer needs a launched deal."),
    M.NOT_A_CONTENT_MANAGER: N_("Choose a content manager."),
    M.DEADLINE_STATE: N_("This deadline is already settled."),
    M.CHECKLIST_ITEM: N_("Not an item of this checklist."),
    M.CHECKLIST_FIRST: N_("Tick every checklist item first (CL-7): %(missing)s."),
    M.LEAD_OWN: N_("A manager registers leads for themselves."),
    M.LEAD_PAID_BY_PAYMENT: N_("A lead becomes paid when its payment arrives."),
    M.LEAD_AT_STAGE: N_("The lead is already at this stage."),
    M.LEAD_BEFORE_DIALOG: N_("Cannot come before the first message."),
    M.LEAD_DISQUALIFIED: N_("The lead is out of the funnel."),
    M.DEAL_ALREADY_LOST: N_("The deal is already lost."),
    M.STAGE_NOT_BY_HAND: N_("This stage is not set by hand."),
    M.REFUND_IN_FUTURE: N_("A refund cannot be dated in the future."),
    M.LEAD_PAID_NOT_SPAM: N_("A lead that paid is a client, not spam."),
    M.QUESTION_ANSWERED: N_("This question has been answered already."),
    M.CAP_NOT_NEGATIVE: N_("Enter 0 or more."),
    M.TEAM_TOO_LONG: N_("A team name has at most 100 characters."),
    M.URL_FORMAT: N_("Enter an address starting with http:// or https://."),
    M.FEED_INTERVAL: N_("Between 1 and 1,440 minutes."),
    M.FEED_EXISTS: N_("This client account already watches this feed."),
    M.KEYWORDS_REQUIRED: N_("Enter at least one keyword."),
    M.MENTION_STATE: N_("This mention has already been handled."),
    M.MENTION_CONVERTED: N_("This mention is already a conversation."),
    M.DISMISS_REASON: N_("Choose a reason."),
    M.DISMISS_NOTE: N_("Say why, when the reason is “other”."),
    M.NOTE_TOO_LONG: N_("A note has at most %(limit)s characters."),
    M.CATEGORY_TOO_LONG: N_("A category has at most 50 characters."),
    M.PRIORITY_UNKNOWN: N_("Choose a priority."),
    M.QUALITY_SCORE: N_("Choose a mark from 1 to 5."),
    M.QUALITY_NO_ANSWER: N_("The conversation has no answer to mark yet."),
    M.CARE_TARGET: N_("The target is between 30 seconds and 7 days."),
    M.CARE_MODE: N_("Choose how the account is checked."),
    M.PORT: N_("Enter a port number (1–65535)."),
    M.MAIL_SECURITY: N_("Choose how the connection is protected: SSL/TLS, STARTTLS or none."),
    M.SLUG: N_("Use lowercase letters, digits and dashes (2–63)."),
    M.EMAIL_CHANNEL_ID: N_("Choose an e-mail channel account."),
    M.WEBHOOK_TELEGRAM_ONLY: N_("Only a Telegram webhook is registered from here; set this channel up in its own console."),
    M.REPLY_TOO_LONG: N_("Longer than this channel allows (%(limit)s characters)."),
    M.CUSTOMER_UNREACHABLE: N_("The customer cannot be reached on this channel: %(reason)s"),
    M.INSTAGRAM_WINDOW: N_("Outside Instagram's 24-hour window: the customer must write first."),
    M.REPLY_FILES_CHANNEL: N_("Files cannot be sent here (Instagram and VK wall comments take text only)."),
    M.REPLY_FILES_TOO_MANY: N_("At most %(limit)s files in one reply."),
    M.REPLY_FILES_TOO_LARGE: N_("The files of one reply may be %(limit)s MB together."),
    M.REPLY_FILE_EMPTY: N_("%(name)s is empty."),
    M.TAG_RULE_KIND: N_("Choose what the rule looks at."),
    M.TOO_LONG_200: N_("At most 200 characters."),
    M.TEMPLATE_KIND: N_("Choose a template or a script."),
    M.NO_SUCH_TEMPLATE: N_("This template no longer exists."),
}
MESSAGES.update(REFUSAL_MESSAGES)
_MONTH_PARAMS = ("month",)


def say_code(code: str | None, params: dict[str, Any] | None = None, fallback: str = "") -> str:
    """A code and its parameters in the request language; `fallback` (the English text) if the code is new
    to this gateway or its parameters do not fit."""
    msgid = MESSAGES.get(code or "")
    if msgid is None:
        return fallback
    values = dict(params or {})
    if "by" in values or "managers" in values:   # logins the service names: the people's full names
        from gateway.people import person

        if "by" in values:
            values["by"] = person(values["by"])
        if "managers" in values:
            values["managers"] = ", ".join(person(login.strip()) for login in str(values["managers"]).split(","))
    if "checklist_item" in values:   # CL-7: a checklist item's key, said as the checklist says it
        from gateway.labels import label

        values["checklist_item"] = label("checklist", str(values["checklist_item"]))
    if any(name in values for name in _MONTH_PARAMS):
        from gateway.rendering import month_name

        values = {k: month_name(v, in_text=True) if k in _MONTH_PARAMS else v for k, v in values.items()}
    try:
        from gateway.rendering import upfirst

        return upfirst(gettext(msgid) % values if "%(" in msgid else gettext(msgid))
    except (KeyError, TypeError, ValueError):
        return fallback


def say_item(item: dict[str, Any]) -> str:
    """One error item of a service's 4xx (or an import row error) in the request language."""
    message = str(item.get("message") or "")
    code = item.get("code") or M.message_code(message)
    return say_code(code, item.get("params"), message)


def line_note(line: dict[str, Any]) -> str:
    """A statement line's fact (payroll `note_code`), else the service's note."""
    return say_code(line.get("note_code"), line.get("note_params"), str(line.get("note") or ""))
