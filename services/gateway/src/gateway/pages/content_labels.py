"""What the content pages say for the content service's ids and figures, in the user's language
(template globals, registered by gateway.labels)."""

from __future__ import annotations

from datetime import date
from typing import Any

from gateway.i18n import N_, _

PLAN_STATUSES = {"not_due": N_("not due yet"), "due": N_("due"), "draft": N_("draft"),
                 "in_approval": N_("waiting for the client"), "changes_requested": N_("changes requested"),
                 "approved": N_("approved")}
ITEM_KINDS = {"feed": N_("Feed post"), "story": N_("Story"), "reel": N_("Reel")}
ITEM_STATUSES = {"planned": N_("planned"), "scheduled": N_("scheduled"), "published": N_("published"),
                 "failed": N_("failed")}
MISSED = {"feed": N_("no feed post"), "stories": N_("no stories for 3 days")}
FIELD_NAMES = {"date": N_("date"), "kind": N_("format"), "caption": N_("caption"), "media": N_("media")}
REQUEST_STATUSES = {"requested": N_("waiting for the manager"), "approved": N_("approved"),
                    "declined": N_("declined")}
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))
METRIC_NAMES = {"likes": N_("Likes"), "comments": N_("Comments"), "saves": N_("Saves"), "reach": N_("Reach"),
                "followers": N_("Followers"), "engagement_rate": N_("Engagement rate")}

_TABLES = {"plan": PLAN_STATUSES, "kind": ITEM_KINDS, "item": ITEM_STATUSES, "missed": MISSED,
           "field": FIELD_NAMES}


def content_label(table: str, key: str | None) -> str:
    msgid = _TABLES[table].get(key or "")
    return _(msgid) if msgid else str(key or "")


def request_status(status: str | None) -> str:
    msgid = REQUEST_STATUSES.get(status or "")
    return _(msgid) if msgid else str(status or "")


def day(value: Any) -> str:
    """'2026-03-02' → '02.03.2026'."""
    try:
        return date.fromisoformat(str(value)).strftime("%d.%m.%Y")
    except ValueError:
        return str(value or "")


def weekday_name(value: date) -> str:
    return _(WEEKDAYS[value.weekday()])


def round_changes_text(changes: dict[str, Any] | None) -> str:
    """CO-4: what changed between two rounds, in words."""
    if not changes:
        return "—"
    parts = []
    if changes.get("added"):
        parts.append(_("added: %(n)s") % {"n": len(changes["added"])})
    if changes.get("removed"):
        parts.append(_("removed: %(n)s") % {"n": len(changes["removed"])})
    for change in changes.get("changed", []):
        fields = ", ".join(content_label("field", f) for f in change.get("fields", []))
        parts.append(_("changed: %(fields)s") % {"fields": fields})
    return "; ".join(parts) or _("nothing changed")


def content_message(field: str, message: str) -> str:
    """A content service message the pages know, said in the user's language; anything else as sent."""
    if field == "date" and message.startswith("outside the plan's days"):
        days = message.removeprefix("outside the plan's days").strip().split("…")
        shown = " – ".join(day(d) for d in days)
        return _("The date must be one of the plan's days (%(days)s).") % {"days": shown}
    if field == "kind" and message.startswith("must be one of"):
        return _("Choose a format: feed post, story or reel.")
    if field == "caption" and "2,200" in message:
        return _("At most 2,200 characters (Instagram's limit).")
    return message


# ------------------------------------------------------------------ statistics (CO-7)

def metric_name(metric: str) -> str:
    return _(METRIC_NAMES.get(metric, metric))


def figure(metric: str, value: Any) -> str:
    if value is None:
        return "—"
    if metric == "engagement_rate":
        return f"{float(value) * 100:.2f}%"
    return f"{int(value):,}".replace(",", "\u202f")


def change_text(change: dict[str, Any] | None, metric: str) -> str:
    """Week over week: '+120 (+4.5%)'; for the engagement rate in percentage points."""
    if not change or not change.get(metric):
        return ""
    c = change[metric]
    delta = c.get("delta") or 0
    text = f"{delta * 100:+.2f} pp" if metric == "engagement_rate" else f"{delta:+,}".replace(",", "\u202f")
    if c.get("pct") is not None:
        text += f" ({c['pct']:+.1f}%)"
    return text


def template_globals() -> dict[str, Any]:
    return {"content_label": content_label, "request_status": request_status, "day": day,
            "weekday_name": weekday_name, "round_changes_text": round_changes_text, "metric_name": metric_name,
            "figure": figure, "change_text": change_text}
