"""Names people read for the services' ids (stages, task kinds, rules…), translated where shown."""

from __future__ import annotations

from datetime import date
from typing import Any

from gateway.i18n import N_, gettext
from gateway.ui import money

# Deal stages in pipeline order (clients rules.STAGES); names as the agency says them (DOMAIN CL-4..CL-12).
STAGES: dict[str, str] = {
    "new": N_("New (paid)"),
    "contacted": N_("Contacted"),
    "questionnaire_received": N_("Questionnaire received"),
    "project_launched": N_("Project launched"),
    "notification_sent": N_("Notification sent"),
    "lost": N_("Client lost"),
}
# Stages a person sets by hand (the questionnaire sets its own stage, CL-5; a deal starts as new).
MANUAL_STAGES = ("contacted", "project_launched", "notification_sent", "lost")
LAUNCH_FIELDS = ("service_start", "instagram_login", "instagram_password")

SERVICE_KINDS: dict[str, str] = {
    "account_management": N_("Account management"),
    "complex_promotion": N_("Complex promotion"),
}
PAYER_TYPES: dict[str, str] = {"individual": N_("Individual"), "legal": N_("Legal entity")}
DEADLINE_STATES: dict[str, str] = {"open": N_("open"), "met": N_("met"), "breached": N_("breached"),
                                   "waived": N_("waived")}
# Task kinds (clients TASK_TITLES); an unknown kind shows the service's own title.
TASK_KINDS: dict[str, str] = {
    "first_call": N_("First call (script #3)"),
    "concept": N_("Concept, 3 reference accounts, call with the client, request materials"),
    "growth_start": N_("Start follower growth (credentials attached to the deal)"),
    "account_setup": N_("Account setup checklist"),
    "renewal_call": N_("Renewal call (script #4), recorded, recording attached"),
    "ask_ad_manager": N_("Ask the ad manager whether the client continues"),
}
TASK_STATUSES: dict[str, str] = {"open": N_("open"), "done": N_("done"), "cancelled": N_("cancelled")}
LEAD_STAGES: dict[str, str] = {"dialog": N_("Dialog"), "warm_lead": N_("Warm lead"),
                               "application": N_("Application"), "paid": N_("Paid")}
FUNNEL_STEPS: dict[str, str] = {
    "dialogs": N_("Dialogs"), "warm_leads": N_("Warm leads"), "applications": N_("Applications"),
    "paid": N_("Paid"), "launched": N_("Launched"), "renewed": N_("Renewed"), "lost": N_("Lost"),
}
IMPORT_STATUSES: dict[str, str] = {"queued": N_("queued"), "running": N_("running"), "done": N_("done")}
MONTH_STATES: dict[str, str] = {"open": N_("open (live preview)"), "closed": N_("closed")}
# Payroll rules (DOMAIN PAY-1..PAY-7).
PAY_RULES: dict[str, str] = {
    "PAY-1": N_("Base salary"),
    "PAY-2": N_("Client renewed"),
    "PAY-3": N_("Client lost"),
    "PAY-4": N_("Refund within 10 days"),
    "PAY-5": N_("No refund within 10 days"),
    "PAY-6": N_("Deadline fine"),
    "PAY-7": N_("Best manager of the month"),
}
BEST_MANAGER_CRITERIA: dict[str, str] = {
    "renewals": N_("most renewals"), "lost": N_("fewest lost"), "compliance": N_("best deadline compliance"),
    "refunds": N_("fewest refunds"), "breaches": N_("fewest breached deadlines"),
}

# The client's questionnaire (CL-5; what the manager needs for the concept, CL-6): answer key -> question.
QUESTIONS: list[tuple[str, str]] = [
    ("business", N_("What is your business, product or service?")),
    ("audience", N_("Who are your customers?")),
    ("goals", N_("What should the account achieve?")),
    ("references", N_("Accounts you like (links)")),
    ("style", N_("Style and tone you prefer")),
    ("materials", N_("Where can we take photos, videos, logos (link)?")),
    ("notes", N_("Anything else we should know")),
]

# Answer keys the API accepts besides the form's own (older questionnaires, the demo seed, integrations).
EXTRA_QUESTION_KEYS: dict[str, str] = {"niche": N_("Niche"), "tone": N_("Tone of voice"), "goal": N_("Goal"),
                                       "competitors": N_("Competitors"), "budget": N_("Budget")}

# What a deadline is about (clients `what_code`): a task kind (TASK_KINDS) or one of these.
DEADLINE_WHAT: dict[str, str] = {"first_post": N_("First published post")}
LOST_REASONS: dict[str, str] = {"declined": N_("the client declined"), "unpaid": N_("not paid in time"),
                                  "refunded": N_("refunded in full within 10 days")}
DOCUMENT_KINDS: dict[str, str] = {"payment_details": N_("Payment details"), "invoice": N_("Invoice")}
# A deal's timeline entries by `code`; `data` holds the parameters (clients services.history). An entry
# without a known code, or without the parameters its text needs, shows the service's English summary.
TIMELINE: dict[str, str] = {
    "stage.changed": N_("Stage: %(from_stage)s → %(to_stage)s"),
    "task.assigned": N_("Task “%(task)s” for %(assignee)s"),
    "task.done": N_("Task “%(task)s” done"),
    "deadline.met": N_("Deadline %(rule)s met"),
    "deadline.breach_retracted": N_("Breach of %(rule)s retracted: the work was done in time"),
    "deadline.breached": N_("Deadline %(rule)s breached"),
    "deadline.waived": N_("Deadline %(rule)s waived: %(reason)s"),
    "payment.received": N_("Paid %(amount)s"),
    "payment.renewal": N_("Renewal paid %(amount)s"),
    "refund.recorded": N_("Refunded %(amount)s"),
    "loss.undone": N_("Automatic loss undone by a payment dated before it"),
    "period.opened": N_("Period %(period_no)s: %(service_start)s – %(end)s"),
    "questionnaire.received": N_("Questionnaire received"),
    "questionnaire.updated": N_("Questionnaire updated"),
    "first_post.published": N_("First post published"),
    "deal.lost": N_("Client lost: %(reason)s"),
    "renewal_answer.continues": N_("The client continues"),
    "renewal_answer.declines": N_("The client declines"),
    "document.sent": N_("%(document)s №%(number)s sent"),
    "manager.changed": N_("Responsible manager: %(previous)s → %(manager)s"),
    "money_back.ended": N_("Money-back window ended"),
    "money_back.refunded": N_("Money-back window ended (refunded)"),
    "attachment.added": N_("Attached %(filename)s"),
    "client.updated": N_("Client card changed: %(fields)s"),
    "checklist.ticked": N_("Checklist: “%(item)s” done"),
    "checklist.unticked": N_("Checklist: “%(item)s” not done"),
}
# Checklist items of tasks (clients services.CHECKLISTS; CL-6, CL-7), as the service names them.
CHECKLIST_ITEMS: dict[str, str] = {
    "avatar": N_("Avatar"),
    "contact buttons": N_("Contact buttons"),
    "WhatsApp link": N_("WhatsApp link"),
    "USP in bio": N_("USP in bio"),
    "call to action": N_("Call to action"),
    "contacts": N_("Contacts"),
    "preliminary account concept": N_("Preliminary account concept"),
    "3 reference accounts": N_("3 reference accounts"),
    "call with the client": N_("Call with the client"),
    "request materials (high resolution, by e-mail)": N_("Request materials (high resolution, by e-mail)"),
}
# The client card's fields (CL-1), for the edit form and the timeline.
CLIENT_FIELDS: dict[str, str] = {
    "full_name": N_("Full name"), "phone": N_("Phone"), "instagram": N_("Instagram"), "email": N_("E-mail"),
    "payer_type": N_("Payer"), "company_name": N_("Company name"), "bin": N_("BIN/IIN"), "notes": N_("Notes"),
}

# Our services, as the pages name them (System status, "service unavailable").
SERVICES: dict[str, str] = {"clients": N_("Clients and deals"), "content": N_("Content"),
                            "engagement": N_("Care inbox"), "payroll": N_("Payroll"), "gateway": N_("Web pages")}

_TABLES: dict[str, dict[str, str]] = {
    "service": SERVICES,
    "stage": STAGES, "kind": SERVICE_KINDS, "payer": PAYER_TYPES, "deadline": DEADLINE_STATES,
    "task": TASK_STATUSES, "taskkind": TASK_KINDS, "lead": LEAD_STAGES, "funnel": FUNNEL_STEPS, "import": IMPORT_STATUSES,
    "month": MONTH_STATES, "pay": PAY_RULES, "criterion": BEST_MANAGER_CRITERIA, "question": {**dict(QUESTIONS), **EXTRA_QUESTION_KEYS},
    "lost": LOST_REASONS, "document": DOCUMENT_KINDS, "checklist": CHECKLIST_ITEMS, "clientfield": CLIENT_FIELDS,
}


def label(table: str, key: str | None) -> str:
    """`{{ label("stage", deal.stage) }}`: the translated name, or the id itself if it is new to us."""
    if key is None:
        return ""
    msgid = _TABLES[table].get(key)
    return gettext(msgid) if msgid else key


def options(table: str, keys: Any = None) -> list[tuple[str, str]]:
    source = _TABLES[table]
    return [(key, label(table, key)) for key in (keys if keys is not None else source)]


def task_title(task: dict[str, Any]) -> str:
    msgid = TASK_KINDS.get(task.get("kind") or "")
    return gettext(msgid) if msgid else str(task.get("title") or "")


def deadline_what(deadline: dict[str, Any]) -> str:
    """What a deadline is about, from its `what_code`; the service's English `what` if the code is new."""
    code = deadline.get("what_code") or ""
    msgid = TASK_KINDS.get(code) or DEADLINE_WHAT.get(code)
    return gettext(msgid) if msgid else str(deadline.get("what") or "")


def _day(value: Any) -> str:
    try:
        return date.fromisoformat(str(value)).strftime("%d.%m.%Y")
    except ValueError:
        return str(value)


def _timeline_params(code: str, data: dict[str, Any]) -> dict[str, Any]:
    """The entry's parameters as they are shown: ids become their translated names, money and dates
    their local forms. A parameter the text needs but the entry lacks raises KeyError."""
    params = dict(data)
    if code == "stage.changed":
        params["from_stage"] = label("stage", data["from_stage"]) or "—"
        params["to_stage"] = label("stage", data["to_stage"])
    elif code in ("task.assigned", "task.done"):
        params["task"] = label("taskkind", data["task_kind"])
        if code == "task.assigned":
            params["assignee"] = data["assignee"] or gettext("unassigned")
    elif code in ("payment.received", "payment.renewal", "refund.recorded"):
        params["amount"] = money(data["amount"], data["currency"])
    elif code == "period.opened":
        params["service_start"], params["end"] = _day(data["service_start"]), _day(data["end"])
    elif code == "deal.lost":
        params["reason"] = label("lost", data["reason"])
    elif code == "document.sent":
        params["document"] = label("document", data["document_kind"])
    elif code == "manager.changed":
        params["previous"] = data["previous"] or "—"
    elif code == "client.updated":
        params["fields"] = ", ".join(label("clientfield", name) for name in data["fields"])
    elif code in ("checklist.ticked", "checklist.unticked"):
        params["item"] = label("checklist", data["item"])
    return params


def timeline_text(entry: dict[str, Any]) -> str:
    """A timeline entry in the user's language, from its `code` and `data`."""
    code = str(entry.get("code") or "")
    data = entry.get("data") or {}
    if code == "money_back.ended" and data.get("refunded"):
        code = "money_back.refunded"
    if code == "checklist.ticked" and data.get("done") is False:
        code = "checklist.unticked"
    msgid = TIMELINE.get(code)
    if msgid is None:
        return str(entry.get("summary") or "")
    try:
        return gettext(msgid) % _timeline_params(code, data)
    except (KeyError, TypeError, ValueError):
        return str(entry.get("summary") or "")


def field_name(name: str | None) -> str:
    """A field a service names (`client.phone`, an amoCRM column) as the reader calls it."""
    if not name:
        return "—"
    key = name.removeprefix("client.")
    msgid = CLIENT_FIELDS.get(key)
    return gettext(msgid) if msgid else name


def template_globals() -> dict[str, Any]:
    from gateway import messages
    from gateway.pages import content_labels  # the content pages' names (issue 10)

    return {**content_labels.template_globals(),
            "label": label, "task_title": task_title, "deadline_what": deadline_what, "timeline_text": timeline_text,
            "options": options, "STAGES": list(STAGES), "MANUAL_STAGES": MANUAL_STAGES,
            "say_item": messages.say_item, "line_note": messages.line_note, "field_name": field_name}
