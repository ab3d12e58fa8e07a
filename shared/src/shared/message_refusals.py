"""Codes of the refusals every service may answer (issue 9): records not found, actions a role may not take,
the payroll rule sets, clients' repeated external ids and list filters. Part of `shared.messages` (which
re-exports every name here and merges `REFUSALS` into its `CODES`); a module of its own so that one stays a
screen long. The English is each refusal's text as API clients knew it before it had a code.
"""

from __future__ import annotations

# ---------------------------------------------------------------- not found (each record its own sentence)
DEAL_NOT_FOUND = "deal.not_found"
TASK_NOT_FOUND = "task.not_found"
ATTACHMENT_NOT_FOUND = "attachment.not_found"
DEADLINE_NOT_FOUND = "deadline.not_found"
IMPORT_NOT_FOUND = "import.not_found"
CLIENT_NOT_FOUND = "client.not_found"
LEAD_NOT_FOUND = "lead.not_found"
LEAD_NO_CONVERSATION = "lead.no_conversation_lead"
NO_CREDENTIALS = "deal.no_credentials"
NO_DOCUMENT = "deal.no_document"
LINK_INVALID = "link.invalid"
LINK_EXPIRED = "link.expired"
MEDIA_LINK_INVALID = "media.link_invalid"
MEDIA_LINK_EXPIRED = "media.link_expired"
MEDIA_NOT_FOUND = "media.not_found"
MEDIA_UNKNOWN = "media.unknown"
CONTENT_PLAN_NOT_FOUND = "content.plan.not_found"
CONTENT_ITEM_NOT_FOUND = "content.item.not_found"
CONTENT_COMMENT_NOT_FOUND = "content.comment.not_found"
CONTENT_REQUEST_NOT_FOUND = "content.request.not_found"
CONVERSATION_NOT_FOUND = "conversation.not_found"
QUESTION_NOT_FOUND = "ask.not_found"
FEED_NOT_FOUND = "monitoring.source_not_found"
KEYWORD_RULE_NOT_FOUND = "monitoring.rule_not_found"
MENTION_NOT_FOUND = "monitoring.mention_not_found"
CHANNEL_NOT_FOUND = "channel.not_found"
CHANNEL_GONE = "inbox.channel_gone"
WEBFORM_NOT_FOUND = "webform.not_found"
TAG_RULE_NOT_FOUND = "inbox.tag_rule_not_found"
INBOX_FILE_NOT_FOUND = "inbox.file_not_found"
TEMPLATE_NOT_FOUND = "template.not_found"
OWNER_NOT_ON_ROSTER = "sop.owner_not_on_roster"
SOP_FILE_NOT_FOUND = "sop.file_not_found"
SOP_GROUP_NOT_FOUND = "sop.group_not_found"
SOP_PUSH_TASK_NOT_FOUND = "sop.push_task_not_found"
SOP_RULE_NOT_FOUND = "sop.rule_not_found"
SOP_ENTRY_NOT_FOUND = "sop.entry_not_found"
SOP_PUSH_NOT_FOUND = "sop.push_not_found"
EMPLOYEE_NOT_FOUND = "payroll.no_employee"
DEAD_LETTER_NOT_FOUND = "ops.no_dead_letter"

# ---------------------------------------------------------------- who may do what (403)
ROLE_MAY_NOT = "access.role"
ROLE_MAY_NOT_CHANGE_DEAL = "access.deal_change"
ROLE_MAY_NOT_CHANGE_CARD = "access.card_change"
ROLE_MAY_NOT_CHANGE_CONTENT = "access.content_change"
ROLE_MAY_NOT_CHANGE_CONVERSATIONS = "access.conversation_change"
ROLE_MAY_NOT_READ_PAYROLL = "access.payroll_read"
TASK_ASSIGNEE_COMPLETES = "access.task_complete"
TASK_ASSIGNEE_TICKS = "access.checklist_tick"
CREDENTIALS_REVEALED_TO = "access.credentials"
INSTAGRAM_TOKEN_REVEALED_TO = "access.instagram_token"
WEBHOOK_PAYMENTS_ONLY = "access.webhook_payments_only"
WEBHOOK_NO_CADENCE = "access.webhook_cadence"
WEBHOOK_NO_INBOX = "access.webhook_inbox"
OWN_FUNNEL = "access.own_funnel"
ANALYST_READS_ONLY = "access.analyst_reads_only"
REASSIGN_SENIOR = "access.reassign"
SHIFT_SENIOR = "access.shift"
TEAMS_LEAD = "access.teams"
OWN_PUSHES = "access.own_pushes"
MARK_SENT_OWNER = "access.mark_sent"
OWN_STATEMENT = "access.own_statement"
ROSTER_WRITERS = "access.roster"
LEAD_CLOSES_MONTH = "access.lead_closes_month"
LEAD_PICKS_BEST = "access.lead_picks_best_manager"
LEAD_CHANGES_RULES = "access.lead_changes_rules"
LEAD_REBUILDS = "access.lead_rebuilds"
LEAD_JOURNEYS = "access.journeys"
LEAD_DEAD_LETTERS = "access.dead_letters"

# ---------------------------------------------------------------- payroll: months, money, rule sets, PAY-7
PAYROLL_MONTH_FORMAT = "payroll.month_format"
PAYROLL_MONTH_YEARS = "payroll.month_years"
PAYROLL_AMOUNT_FLOAT = "payroll.amount.float"
PAYROLL_AMOUNT_NOT_DECIMAL = "payroll.amount.not_decimal"
PAYROLL_AMOUNT_TOO_BIG = "payroll.amount.too_big"
PAYROLL_AMOUNT_CENTS = "payroll.amount.cents"
RULES_NONE_IN_FORCE = "payroll.rules.none_in_force"
RULES_MONTH_CLOSED = "payroll.rules.month_closed"
RULES_CURRENCY = "payroll.rules.currency"
RULES_AMOUNT_MISSING = "payroll.rules.missing"
RULES_BONUS_SIGN = "payroll.rules.bonus_sign"
RULES_DEDUCTION_SIGN = "payroll.rules.deduction_sign"
RULES_UNKNOWN_RULE = "payroll.rules.unknown_rule"
RULES_FINE_SIGN = "payroll.rules.fine_sign"
RULES_NO_CRITERION = "payroll.rules.no_criterion"
RULES_UNKNOWN_CRITERION = "payroll.rules.unknown_criterion"
RULES_CRITERION_TWICE = "payroll.rules.criterion_twice"
BEST_MANAGER_CHOOSE = "payroll.best_manager_choose"
BEST_MANAGER_CLOSED = "payroll.best_manager_closed"
BEST_MANAGER_TIE_UNRESOLVED = "payroll.best_manager_tie_unresolved"
BEST_MANAGER_NO_TIE = "payroll.best_manager_no_tie"
BEST_MANAGER_NOT_TIED = "payroll.best_manager_not_tied"
PAGE_RANGE = "list.page"
PAGE_SIZE_RANGE = "list.page_size"
ROSTER_UNKNOWN_ROLE = "roster.unknown_role"
ROSTER_END_BEFORE_START = "roster.end_before_start"
BUS_DOWN = "bus.not_connected"
BUS_DOWN_TRY_AGAIN = "ops.not_connected"
DEAD_LETTER_TOO_OLD = "ops.dead_letter_too_old"

# ---------------------------------------------------------------- clients: repeated external ids, CL-7, forms
PAYMENT_RECORDED_AMOUNT = "payment.recorded_amount"
PAYMENT_RECORDED_CURRENCY = "payment.recorded_currency"
PAYMENT_RECORDED_DEAL = "payment.recorded_deal"
PAYMENT_RECORDED_CLIENT = "payment.recorded_client"
REFUND_RECORDED_DEAL = "refund.recorded_deal"
REFUND_RECORDED_AMOUNT = "refund.recorded_amount"
REFUND_RECORDED_CURRENCY = "refund.recorded_currency"
REFUND_RECORDED_AT = "refund.recorded_at"
CHECKLIST_NOT_TICKED = "checklist.not_ticked"
DEAL_IDS_AT_MOST = "deal.ids_at_most"
AMOUNT_DECIMAL = "amount.decimal"
AMOUNT_POSITIVE = "amount.positive"
AMOUNT_DIGITS = "amount.digits"
AMOUNT_CENTS = "amount.cents"
CURRENCY_CODE = "currency.code"
CLIENT_REQUIRED = "client.required"
LIST_LIMIT = "list.limit"
LIST_OFFSET = "list.offset"
LIST_SORT = "list.sort"
LEAD_CONTACT_NEEDED = "lead.contact_needed"
FUNNEL_DATE = "funnel.date"
FUNNEL_TO_BEFORE_FROM = "funnel.to_before_from"
FUNNEL_MONTH = "funnel.month"
LINK_TOO_LONG = "link.too_long"
LINK_CONTROL = "link.control_characters"
LINK_SPACES = "link.spaces"
LINK_NOT_VALID = "link.not_valid"
LINK_SCHEME = "link.scheme"
LINK_HOST = "link.host"
LINK_HOSTS = "link.hosts"
INSTAGRAM_HANDLE = "link.instagram_handle"

# ---------------------------------------------------------------- content: Instagram
INSTAGRAM_UNAVAILABLE = "instagram.unavailable"
INSTAGRAM_REFUSED = "instagram.refused"
CONTENT_COMMENT_OPEN = "content.comment.open"

# ---------------------------------------------------------------- engagement: channels, filters, website form
CHANGES_SINCE = "changes.since"
CHANGES_WAIT = "changes.wait"
OFFSET_BETWEEN = "list.offset_between"
MENTION_STATUS_FILTER = "monitoring.status_filter"
PRIORITY_FILTER = "inbox.priority_filter"
STATUS_FILTER = "inbox.status_filter"
WEBFORM_SLUG_TAKEN = "channel.webform_slug_taken"
INSTAGRAM_CHANNEL_EXISTS = "channel.instagram_exists"
TELEGRAM_WEBHOOK_REFUSED = "channel.webhook_refused"
CARE_TZ = "care.timezone"
CARE_HOURS = "care.hours"
CARE_DAYS = "care.days"
CARE_HOLIDAYS = "care.holidays"
# The website form's codes were public before the catalogue (its page and partners' sites read them): kept.
WEBFORM_TOO_LONG = "too_long"
WEBFORM_CONTACT = "contact_invalid"
WEBFORM_SUBMISSION_ID = "invalid"
WEBFORM_RATE_LIMITED = "webform_rate_limited"

REFUSALS: dict[str, str] = {
    DEAL_NOT_FOUND: "deal not found",
    TASK_NOT_FOUND: "task not found",
    ATTACHMENT_NOT_FOUND: "attachment not found",
    DEADLINE_NOT_FOUND: "deadline not found",
    IMPORT_NOT_FOUND: "import not found",
    CLIENT_NOT_FOUND: "client not found",
    LEAD_NOT_FOUND: "lead not found",
    LEAD_NO_CONVERSATION: "no lead for this conversation",
    NO_CREDENTIALS: "no credentials stored for this deal (set at launch, CL-8)",
    NO_DOCUMENT: "no document yet: answer the renewal question first (CL-12)",
    LINK_INVALID: "invalid link",
    LINK_EXPIRED: "this link has expired",
    MEDIA_LINK_INVALID: "invalid media link",
    MEDIA_LINK_EXPIRED: "this media link has expired",
    MEDIA_NOT_FOUND: "media not found",
    MEDIA_UNKNOWN: "unknown media %(ref)s",
    CONTENT_PLAN_NOT_FOUND: "plan not found",
    CONTENT_ITEM_NOT_FOUND: "item not found",
    CONTENT_COMMENT_NOT_FOUND: "comment not found",
    CONTENT_REQUEST_NOT_FOUND: "request not found",
    CONVERSATION_NOT_FOUND: "conversation not found",
    QUESTION_NOT_FOUND: "no such question",
    FEED_NOT_FOUND: "source not found",
    KEYWORD_RULE_NOT_FOUND: "rule not found",
    MENTION_NOT_FOUND: "mention not found",
    CHANNEL_NOT_FOUND: "channel not found",
    CHANNEL_GONE: "the channel account of this conversation is gone",
    WEBFORM_NOT_FOUND: "no such form",
    TAG_RULE_NOT_FOUND: "tag rule not found",
    INBOX_FILE_NOT_FOUND: "file not found",
    TEMPLATE_NOT_FOUND: "template not found",
    OWNER_NOT_ON_ROSTER: "not on the owners' roster",
    SOP_FILE_NOT_FOUND: "file not found",
    SOP_GROUP_NOT_FOUND: "group not found",
    SOP_PUSH_TASK_NOT_FOUND: "push task not found",
    SOP_RULE_NOT_FOUND: "SOP rule not found",
    SOP_ENTRY_NOT_FOUND: "calendar entry not found",
    SOP_PUSH_NOT_FOUND: "push not found",
    EMPLOYEE_NOT_FOUND: "no employee %(login)s",
    DEAD_LETTER_NOT_FOUND: "no such dead letter",
    ROLE_MAY_NOT: "role %(role)s may not do this",
    ROLE_MAY_NOT_CHANGE_DEAL: "role %(role)s may not change this deal",
    ROLE_MAY_NOT_CHANGE_CARD: "role %(role)s may not change this client card",
    ROLE_MAY_NOT_CHANGE_CONTENT: "role %(role)s may not change this deal's content",
    ROLE_MAY_NOT_CHANGE_CONVERSATIONS: "role %(role)s may not change conversations",
    ROLE_MAY_NOT_READ_PAYROLL: "role %(role)s may not read payroll",
    TASK_ASSIGNEE_COMPLETES: "only the task's assignee or the lead completes this task",
    TASK_ASSIGNEE_TICKS: "only the task's assignee or the lead ticks its checklist",
    CREDENTIALS_REVEALED_TO: "credentials are revealed only to the lead, the responsible manager and the growth "
                             "specialist of the deal",
    INSTAGRAM_TOKEN_REVEALED_TO: "the token is revealed only to the lead and the deal's responsible manager",
    WEBHOOK_PAYMENTS_ONLY: "a signed webhook may only post payments and refunds",
    WEBHOOK_NO_CADENCE: "a signed webhook may not read the cadence board",
    WEBHOOK_NO_INBOX: "a signed webhook may not read the inbox",
    OWN_FUNNEL: "a manager sees their own funnel",
    ANALYST_READS_ONLY: "an analyst reads only",
    REASSIGN_SENIOR: "only a senior agent or the lead reassigns a conversation",
    SHIFT_SENIOR: "only a senior agent or the lead changes another agent's shift or cap",
    TEAMS_LEAD: "only the lead puts agents in teams",
    OWN_PUSHES: "an owner sees only their own pushes",
    MARK_SENT_OWNER: "only the push's owner or the lead marks it sent",
    OWN_STATEMENT: "a content manager sees only their own statement",
    ROSTER_WRITERS: "only the project lead or an integration may change the roster",
    LEAD_CLOSES_MONTH: "only the project lead may close a payroll month",
    LEAD_PICKS_BEST: "only the project lead may pick the best manager",
    LEAD_CHANGES_RULES: "only the project lead may change the pay rules",
    LEAD_REBUILDS: "only the project lead may rebuild the ledger",
    LEAD_JOURNEYS: "only the project lead may see the journeys",
    LEAD_DEAD_LETTERS: "only the project lead may see or replay dead letters",
    PAYROLL_MONTH_FORMAT: "%(field)s must be YYYY-MM, got %(value)r",
    PAYROLL_MONTH_YEARS: "%(field)s must be a month of the years 1970..9998, got %(value)r",
    PAYROLL_AMOUNT_FLOAT: "%(field)s must be a decimal string, not a float",
    PAYROLL_AMOUNT_NOT_DECIMAL: "%(field)s is not a decimal number: %(value)r",
    PAYROLL_AMOUNT_TOO_BIG: "%(field)s has more than 12 digits before the decimal point",
    PAYROLL_AMOUNT_CENTS: "%(field)s must have at most 2 decimal places: %(value)r",
    RULES_NONE_IN_FORCE: "no rule set in force for %(month)s",
    RULES_MONTH_CLOSED: "%(month)s is closed: rules of a closed month never change",
    RULES_CURRENCY: "currency must be a 3-letter ISO code",
    RULES_AMOUNT_MISSING: "missing",
    RULES_BONUS_SIGN: "must be >= 0 (a bonus)",
    RULES_DEDUCTION_SIGN: "must be <= 0 (a deduction)",
    RULES_UNKNOWN_RULE: "unknown rule (PAY-6 fines go in deadline_fines)",
    RULES_FINE_SIGN: "a fine must be <= 0",
    RULES_NO_CRITERION: "at least one criterion",
    RULES_UNKNOWN_CRITERION: "unknown criterion %(value)r; known: %(known)s",
    RULES_CRITERION_TWICE: "a criterion appears twice",
    BEST_MANAGER_CHOOSE: "choose one of the tied managers",
    BEST_MANAGER_CLOSED: "%(month)s is closed: its best manager does not change",
    BEST_MANAGER_TIE_UNRESOLVED: "the best manager is tied: pick one before closing",
    BEST_MANAGER_NO_TIE: "there is no tie to decide this month",
    BEST_MANAGER_NOT_TIED: "choose one of the tied managers: %(managers)s",
    PAGE_RANGE: "page must be 1..1000000",
    PAGE_SIZE_RANGE: "page_size must be 1..5000",
    ROSTER_UNKNOWN_ROLE: "unknown role %(value)r",
    ROSTER_END_BEFORE_START: "employed_to is before employed_from",
    BUS_DOWN: "NATS is not connected",
    BUS_DOWN_TRY_AGAIN: "NATS is not connected; try again",
    DEAD_LETTER_TOO_OLD: "this dead letter is older than %(days)s days: consumers that applied the event then may "
                         "have forgotten it, so a replay could apply it twice",
    PAYMENT_RECORDED_AMOUNT: "this payment was recorded with %(amount)s",
    PAYMENT_RECORDED_CURRENCY: "this payment was recorded in %(currency)s",
    PAYMENT_RECORDED_DEAL: "this payment was recorded on another deal",
    PAYMENT_RECORDED_CLIENT: "this payment was recorded for another client",
    REFUND_RECORDED_DEAL: "this refund was recorded on another deal",
    REFUND_RECORDED_AMOUNT: "this refund was recorded with %(amount)s",
    REFUND_RECORDED_CURRENCY: "this refund was recorded in %(currency)s",
    REFUND_RECORDED_AT: "this refund was recorded at another time",
    # The item's message was the bare item name before it had a code: API clients may list it as it is.
    CHECKLIST_NOT_TICKED: "%(checklist_item)s",
    DEAL_IDS_AT_MOST: "at most %(limit)s deal ids",
    AMOUNT_DECIMAL: 'must be a decimal amount like "60000.00"',
    AMOUNT_POSITIVE: "must be a positive amount",
    AMOUNT_DIGITS: "at most %(digits)s digits before the decimal point",
    AMOUNT_CENTS: "at most two decimal places",
    CURRENCY_CODE: "must be an ISO 4217 code like KZT",
    CLIENT_REQUIRED: "required for a new client (no deal_id)",
    LIST_LIMIT: "must be between 1 and %(max)s",
    LIST_OFFSET: "must be between 0 and %(max)s",
    LIST_SORT: "must be one of %(choices)s (prefix - for descending)",
    LEAD_CONTACT_NEEDED: "a phone, an Instagram link or an e-mail is needed to reach the person",
    FUNNEL_DATE: "a date YYYY-MM-DD",
    FUNNEL_TO_BEFORE_FROM: "before from",
    FUNNEL_MONTH: "a month YYYY-MM, or from and to",
    LINK_TOO_LONG: "a link is at most %(limit)s characters",
    LINK_CONTROL: "must not contain control characters",
    LINK_SPACES: "must not contain spaces or backslashes",
    LINK_NOT_VALID: "not a valid link",
    LINK_SCHEME: "must be an http:// or https:// link",
    LINK_HOST: "must be a link to a web site (http(s)://host/…)",
    LINK_HOSTS: "must be a link to %(hosts)s",
    INSTAGRAM_HANDLE: "not an Instagram handle",
    INSTAGRAM_UNAVAILABLE: "Instagram did not answer: %(reason)s",
    # Instagram's own words (English) are the message; its numeric error code is the `graph_code` parameter.
    INSTAGRAM_REFUSED: "%(reason)s",
    # CO-4: a comment not addressed yet, in the client's own words (the item's message before it had a code).
    CONTENT_COMMENT_OPEN: "%(text)s",
    CHANGES_SINCE: "since must be 0 or more",
    CHANGES_WAIT: "wait must be 0 or more",
    OFFSET_BETWEEN: "offset must be between 0 and %(max)s",
    MENTION_STATUS_FILTER: "status must be one of %(choices)s",
    PRIORITY_FILTER: "unknown priority %(value)r",
    STATUS_FILTER: "unknown status %(value)r",
    WEBFORM_SLUG_TAKEN: "a website form with the address /f/%(slug)s exists",
    INSTAGRAM_CHANNEL_EXISTS: "an Instagram channel for ig_user_id %(ig_user_id)s exists",
    TELEGRAM_WEBHOOK_REFUSED: "Telegram refused the webhook: %(reason)s",
    # The care calendar's parser says what is wrong (its words were the message before the codes).
    CARE_TZ: "%(reason)s",
    CARE_HOURS: "%(reason)s",
    CARE_DAYS: "%(reason)s",
    CARE_HOLIDAYS: "%(reason)s",
    WEBFORM_TOO_LONG: "at most %(limit)s characters",
    WEBFORM_CONTACT: "an e-mail address or a phone number",
    WEBFORM_SUBMISSION_ID: "16-64 letters, digits, _ or -",
    WEBFORM_RATE_LIMITED: "rate limited",
}
